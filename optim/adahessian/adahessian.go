package adahessian

import (
	"encoding"
	"fmt"
	"math"

	"github.com/curvopt/curvopt/optim"
	"gorgonia.org/tensor"
)

// Config holds AdaHessian's hyperparameters. The field comments give the
// reference's names in parentheses.
type Config struct {
	// LR is the learning rate η > 0 (lr).
	LR float64
	// Beta1 is the first-moment decay β1 in [0, 1) (betas[0]).
	Beta1 float64
	// Beta2 is the decay β2 in [0, 1) of the EMA of D⊙D (betas[1]).
	Beta2 float64
	// Eps is ε > 0 added to the denominator (eps).
	Eps float64
	// WeightDecay is λ ≥ 0 (weight_decay), decoupled and scaled by η:
	// θ ← θ − η·(… + λ·θ).
	WeightDecay float64
	// HessianPower is k in (0, 1] (hessian_power): the denominator is
	// (√v)ᵏ/(√(1−β2ᵗ))ᵏ + ε.
	HessianPower float64
	// Interval is the Hessian refresh interval n ≥ 1: a fresh D is computed
	// at steps 1, n+1, 2n+1, ...; the steps in between reuse the last D.
	// 1 (every step) is the reference.
	Interval int
	// Probe is the distribution of the probes z when Probes is nil
	// (Rademacher in the reference).
	Probe optim.ProbeKind
	// Seed seeds the default probe source.
	Seed uint64
	// Probes, if not nil, supplies the probes instead of
	// optim.NewRandomProbes(Probe, Seed). If it implements
	// encoding.BinaryMarshaler and encoding.BinaryUnmarshaler its state is
	// saved and restored with the optimizer's.
	Probes optim.ProbeSource
}

// Default returns the official defaults (amirgholami/adahessian
// image_classification): lr 0.15, betas (0.9, 0.999), eps 1e-4, weight decay
// 0, Hessian power 1, a fresh Rademacher probe every step, seed 0.
func Default() Config {
	return Config{LR: 0.15, Beta1: 0.9, Beta2: 0.999, Eps: 1e-4, HessianPower: 1, Interval: 1, Probe: optim.Rademacher}
}

// Validate reports the first invalid hyperparameter, naming the field and
// its value.
func (c Config) Validate() error {
	v := optim.Validator{Optimizer: "adahessian"}
	v.Positive("lr", c.LR)
	v.Unit("beta1", c.Beta1)
	v.Unit("beta2", c.Beta2)
	v.Positive("eps", c.Eps)
	v.NonNegative("weight_decay", c.WeightDecay)
	v.PowerInterval("hessian_power", c.HessianPower)
	v.PositiveInt("interval", c.Interval)
	if c.Probes == nil {
		v.Require(c.Probe == optim.Rademacher || c.Probe == optim.Gaussian, "probe", float64(c.Probe), "Rademacher (0) or Gaussian (1)")
	}
	return v.Err()
}

// AdaHessian is the optimizer. Create it with New.
type AdaHessian struct {
	cfg    Config
	probes optim.ProbeSource
	step   int64
	buf    optim.Buffers // "exp_avg" (m), "exp_hessian_diag_sq" (v)
	// work holds "probe" (z), "hvp" (H·z, then the new D) and, when
	// Interval > 1, "hessian_diag_est" (the D reused between refreshes,
	// exported with the state).
	work    optim.Buffers
	pending bool // a probe was drawn and not yet used
}

// Slot names.
const (
	slotExpAvg = "exp_avg"
	slotExpHSq = "exp_hessian_diag_sq"
	slotDiag   = "hessian_diag_est"
	blobProbes = "probes"
)

// New returns an AdaHessian optimizer, or an error naming an invalid
// hyperparameter.
func New(c Config) (*AdaHessian, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	a := &AdaHessian{cfg: c, probes: c.Probes, buf: optim.NewBuffers(slotExpAvg, slotExpHSq)}
	if a.probes == nil {
		a.probes = optim.NewRandomProbes(c.Probe, c.Seed)
	}
	a.work = optim.NewBuffers(a.workSlots()...)
	return a, nil
}

// workSlots returns the names of the scratch buffers.
func (a *AdaHessian) workSlots() []string {
	if a.cfg.Interval > 1 {
		return []string{"probe", "hvp", slotDiag}
	}
	return []string{"probe", "hvp"}
}

// Name returns "adahessian".
func (*AdaHessian) Name() string { return "adahessian" }

// Needs returns HVP.
func (*AdaHessian) Needs() optim.Needs { return optim.Needs{HVP: true} }

// Config returns the hyperparameters.
func (a *AdaHessian) Config() Config { return a.cfg }

// Steps returns the number of completed steps.
func (a *AdaHessian) Steps() int64 { return a.step }

// SetLR changes the learning rate (for schedules).
func (a *AdaHessian) SetLR(lr float64) error {
	c := a.cfg
	c.LR = lr
	if err := c.Validate(); err != nil {
		return err
	}
	a.cfg = c
	return nil
}

// refresh reports whether step t computes a fresh D.
func (a *AdaHessian) refresh(t int64) bool { return (t-1)%int64(a.cfg.Interval) == 0 }

// NextProbe implements optim.Prober: it returns the probe z the coming Step
// will pass to Oracle.HVP, or nil when that Step reuses the last D. Calling
// it again before that Step returns the same probe.
func (a *AdaHessian) NextProbe(params []optim.Param) ([]*tensor.Dense, error) {
	if !a.refresh(a.step + 1) {
		return nil, nil
	}
	if err := a.drawProbe(params); err != nil {
		return nil, err
	}
	return a.work.Slot(0), nil
}

func (a *AdaHessian) drawProbe(params []optim.Param) error {
	if err := a.work.Ensure(a.Name(), params); err != nil {
		return err
	}
	if a.pending {
		return nil
	}
	if err := a.probes.Fill(a.work.Slot(0)); err != nil {
		return fmt.Errorf("adahessian: drawing the probe: %w", err)
	}
	a.pending = true
	return nil
}

// diag returns the tensors holding the D used by the update.
func (a *AdaHessian) diag() []*tensor.Dense {
	if a.cfg.Interval > 1 {
		return a.work.Slot(2)
	}
	return a.work.Slot(1)
}

// Step applies one AdaHessian update (see the package documentation). All
// checks and the HVP query come before any change: on error (bad
// parameters; an oracle that is nil or does not provide HVP (optim.CheckOracle) or an HVP error; a non-finite
// H·z or D) parameters and state are unchanged, and a drawn probe is kept
// for the next call.
func (a *AdaHessian) Step(params []optim.Param, o optim.Oracle) error {
	if err := optim.CheckParams("adahessian", params); err != nil {
		return err
	}
	if err := optim.CheckOracle("adahessian", a.Needs(), o); err != nil {
		return err
	}
	if err := a.buf.Ensure("adahessian", params); err != nil {
		return err
	}
	if err := a.work.Ensure("adahessian", params); err != nil {
		return err
	}
	t := a.step + 1
	if a.refresh(t) {
		if err := a.estimate(params, o, t); err != nil {
			return err
		}
	}
	a.update(params, t)
	a.step = t
	return nil
}

// estimate computes the new D = avg(|z⊙H·z|) into the D buffer; on error
// the previous D is unchanged.
func (a *AdaHessian) estimate(params []optim.Param, o optim.Oracle, t int64) error {
	if err := a.drawProbe(params); err != nil {
		return err
	}
	z, hz := a.work.Slot(0), a.work.Slot(1)
	if err := o.HVP(z, hz); err != nil {
		return fmt.Errorf("adahessian: step %d: HVP query failed: %w", t, err)
	}
	if err := optim.CheckFinite("adahessian", "Hessian-vector product H·z", params, hz); err != nil {
		return fmt.Errorf("step %d (nothing changed): %w", t, err)
	}
	for i, p := range params {
		shape := p.Value.Shape()
		block := BlockSize(shape)
		j := -1
		switch hz[i].Dtype() {
		case tensor.Float64:
			j = absAverage(hz[i].Float64s(), z[i].Float64s(), block)
		case tensor.Float32:
			j = absAverage(hz[i].Float32s(), z[i].Float32s(), block)
		}
		if j >= 0 {
			return fmt.Errorf("adahessian: step %d: Hessian diagonal estimate for param %q: entry %d is too large (D or D⊙D is not finite): %w", t, p.Name, j, optim.ErrNonFinite)
		}
	}
	if a.cfg.Interval > 1 {
		d := a.work.Slot(2)
		for i := range params {
			optim.CopyInto(d[i], hz[i])
		}
	}
	a.pending = false
	return nil
}

// BlockSize returns the number of consecutive entries (in row-major order)
// over which AdaHessian averages |z⊙H·z| for a parameter of the given shape:
//
//   - rank ≤ 2 (biases, linear weights): 1, no averaging (the reference);
//   - rank 4 (conv2d weights [out, in, kh, kw]): kh·kw, the mean over the
//     kernel window for each (out, in) pair (the reference);
//   - rank 3 ([out, in, k], e.g. conv1d weights): k, the mean over the last
//     dimension, as the reference's instruction/ variant does (the main
//     reference fails on rank 3);
//   - rank ≥ 5 (conv3d [out, in, kd, kh, kw], ...): the product of all
//     dimensions after the first two, by the same rule.
func BlockSize(shape tensor.Shape) int {
	if len(shape) <= 2 {
		return 1
	}
	b := 1
	for _, s := range shape[2:] {
		b *= s
	}
	if b < 1 {
		return 1
	}
	return b
}

// absAverage replaces hz by |z⊙hz| averaged over consecutive blocks of size
// block (the mean is accumulated in float64). It returns the index of the
// first entry whose D or D⊙D is not finite, or −1.
func absAverage[T optim.Float](hz, z []T, block int) int {
	n := len(hz)
	z = z[:n]
	for j := range hz {
		hz[j] = T(math.Abs(float64(z[j] * hz[j])))
	}
	if block > 1 {
		for s := 0; s+block <= n; s += block {
			sum := 0.0
			for _, x := range hz[s : s+block] {
				sum += float64(x)
			}
			mean := T(sum / float64(block))
			for j := s; j < s+block; j++ {
				hz[j] = mean
			}
		}
	}
	for j, x := range hz {
		if f := float64(x * x); math.IsInf(f, 0) || math.IsNaN(f) {
			return j
		}
	}
	return -1
}

// coeffs are the per-step scalars of the update kernel.
type coeffs struct {
	lr, b1, c1, b2, c2, bc1, sbc2k, power, eps, wd float64
}

func (a *AdaHessian) update(params []optim.Param, t int64) {
	c := a.cfg
	tf := float64(t)
	k := coeffs{
		lr: c.LR, b1: c.Beta1, c1: 1 - c.Beta1, b2: c.Beta2, c2: 1 - c.Beta2,
		bc1:   1 - math.Pow(c.Beta1, tf),
		sbc2k: math.Pow(math.Sqrt(1-math.Pow(c.Beta2, tf)), c.HessianPower),
		power: c.HessianPower, eps: c.Eps, wd: c.WeightDecay,
	}
	m, v, d := a.buf.Slot(0), a.buf.Slot(1), a.diag()
	for i, p := range params {
		switch p.Value.Dtype() {
		case tensor.Float64:
			kernel(k, p.Value.Float64s(), p.Grad.Float64s(), m[i].Float64s(), v[i].Float64s(), d[i].Float64s())
		case tensor.Float32:
			kernel(k, p.Value.Float32s(), p.Grad.Float32s(), m[i].Float32s(), v[i].Float32s(), d[i].Float32s())
		}
	}
}

// kernel is the per-coordinate update:
//
//	m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·D⊙D
//	θ ← θ − η·( m/(1−β1ᵗ) / ((√v)ᵏ/(√(1−β2ᵗ))ᵏ + ε) + λ·θ )
func kernel[T optim.Float](k coeffs, theta, g, m, v, d []T) {
	b1, c1, b2, c2 := T(k.b1), T(k.c1), T(k.b2), T(k.c2)
	lr, bc1, sbc2k, eps, wd := T(k.lr), T(k.bc1), T(k.sbc2k), T(k.eps), T(k.wd)
	n := len(theta)
	g, m, v, d = g[:n], m[:n], v[:n], d[:n]
	switch k.power {
	case 1:
		for j := range theta {
			mj := m[j]*b1 + c1*g[j]
			vj := v[j]*b2 + c2*d[j]*d[j]
			m[j], v[j] = mj, vj
			den := T(math.Sqrt(float64(vj)))/sbc2k + eps
			th := theta[j]
			theta[j] = th - lr*(mj/bc1/den+wd*th)
		}
	default:
		p := k.power
		for j := range theta {
			mj := m[j]*b1 + c1*g[j]
			vj := v[j]*b2 + c2*d[j]*d[j]
			m[j], v[j] = mj, vj
			den := T(math.Pow(math.Sqrt(float64(vj)), p))/sbc2k + eps
			th := theta[j]
			theta[j] = th - lr*(mj/bc1/den+wd*th)
		}
	}
}

// State exports the step counter, exp_avg (m), exp_hessian_diag_sq (v),
// with Interval > 1 the reused D (hessian_diag_est), and the probe source's
// state (Blobs["probes"]) when it implements encoding.BinaryMarshaler. Call
// it between steps: a probe drawn by NextProbe for a step not yet taken is
// not part of the state.
func (a *AdaHessian) State() (*optim.State, error) {
	st := &optim.State{Optimizer: a.Name(), Step: a.step}
	a.buf.Export(st)
	if a.cfg.Interval > 1 && a.work.Ready() && a.buf.Ready() {
		names := stateNames(st)
		d := a.work.Slot(2)
		params := make([]optim.Param, len(d))
		for i := range d {
			params[i] = optim.Param{Name: names[i], Value: d[i]}
		}
		st.ExportSlot(slotDiag, params, d)
	}
	if m, ok := a.probes.(encoding.BinaryMarshaler); ok {
		b, err := m.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("adahessian: saving the probe source: %w", err)
		}
		st.Blobs = map[string][]byte{blobProbes: b}
	}
	return st, nil
}

// stateNames returns the parameter names of the exp_avg tensors, in order.
func stateNames(st *optim.State) []string {
	var names []string
	for _, t := range st.Tensors {
		if t.Slot == slotExpAvg {
			names = append(names, t.Param)
		}
	}
	return names
}

// LoadState restores a state exported by AdaHessian for the same parameters
// (names, shapes, dtypes), including the reused D when Interval > 1 and the
// probe source's state when both the state and the source carry one. On
// error nothing changes.
func (a *AdaHessian) LoadState(params []optim.Param, st *optim.State) error {
	if err := st.CheckHeader(a.Name()); err != nil {
		return err
	}
	if len(params) == 0 {
		return fmt.Errorf("adahessian: load state: no parameters")
	}
	for _, p := range params {
		if p.Value == nil {
			return fmt.Errorf("adahessian: load state: param %q: nil value", p.Name)
		}
		if dt := p.Value.Dtype(); dt != tensor.Float64 && dt != tensor.Float32 {
			return fmt.Errorf("adahessian: load state: param %q: unsupported dtype %v", p.Name, dt)
		}
	}
	nb := a.buf
	if err := nb.Import("adahessian", params, st); err != nil {
		return fmt.Errorf("load state: %w", err)
	}
	var diag []*tensor.Dense
	if a.cfg.Interval > 1 && nb.Ready() {
		var err error
		if diag, err = st.ImportSlot("adahessian", slotDiag, params); err != nil {
			return fmt.Errorf("load state (Interval %d needs the reused D): %w", a.cfg.Interval, err)
		}
	}
	if blob, ok := st.Blobs[blobProbes]; ok {
		u, ok := a.probes.(encoding.BinaryUnmarshaler)
		if !ok {
			return fmt.Errorf("adahessian: load state: the state holds a probe-source state but the probe source (%T) cannot restore one", a.probes)
		}
		if err := u.UnmarshalBinary(blob); err != nil {
			return fmt.Errorf("adahessian: load state: %w", err)
		}
	} else if _, ok := a.probes.(encoding.BinaryUnmarshaler); ok && st.Step > 0 {
		return fmt.Errorf("adahessian: load state: the state has no probe-source state (Blobs[%q]), so the probes after resuming would differ", blobProbes)
	}
	a.buf = nb
	a.work = optim.NewBuffers(a.workSlots()...)
	if diag != nil {
		if err := a.work.Ensure("adahessian", params); err != nil {
			return err
		}
		for i := range diag {
			optim.CopyInto(a.work.Slot(2)[i], diag[i])
		}
	}
	a.step = st.Step
	a.pending = false
	return nil
}
