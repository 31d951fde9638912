package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one named parameter tensor of a Model.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// bnRunning holds a batch-norm layer's running statistics for evaluation.
type bnRunning struct {
	layer      int
	name       string
	mean, vari *tensor.Dense // [C]
	momentum   float64
}

// Model is a feed-forward network built from a Spec: its parameters (owned
// here, bound by reference into every graph Build makes, so in-place updates
// are seen by the next run) and the running statistics of its batch-norm
// layers.
type Model struct {
	spec    Spec
	dt      tensor.Dtype
	info    []ParamInfo
	params  []Param
	bn      []*bnRunning
	classes int
	example []int
	dag     *dagModel // NewDAG models
}

// New builds a model from spec with parameters of dtype dt (tensor.Float32 or
// tensor.Float64), initialised from rng as torch does by default:
// linear and conv2d weights and biases are drawn from U(−1/√fan_in,
// 1/√fan_in), where fan_in is In (linear) or In·K·K (conv2d) — the bound of
// torch's kaiming_uniform_(a=√5), i.e. He-style uniform with gain √(1/3);
// batch-norm γ = 1 and β = 0, with running mean 0 and running variance 1.
// A nil rng leaves all parameters zero (for loading values afterwards).
func New(spec Spec, dt tensor.Dtype, rng *rand.Rand) (*Model, error) {
	if err := checkFloat(dt); err != nil {
		return nil, err
	}
	info, classes, err := spec.Check()
	if err != nil {
		return nil, err
	}
	ex, err := spec.ExampleShape()
	if err != nil {
		return nil, err
	}
	m := &Model{spec: spec, dt: dt, info: info, classes: classes, example: ex}
	for _, pi := range info {
		t := tensor.New(tensor.Of(dt), tensor.WithShape(pi.Shape...))
		switch pi.Kind {
		case "bn_weight":
			fill(t, func() float64 { return 1 })
		case "bn_bias":
		default:
			if rng != nil {
				bound := 1 / math.Sqrt(float64(pi.FanIn))
				fill(t, func() float64 { return (2*rng.Float64() - 1) * bound })
			}
		}
		m.params = append(m.params, Param{Name: pi.Name, Value: t})
	}
	for i, l := range spec.Layers {
		if l.Type != LayerBatchNorm2d {
			continue
		}
		r := &bnRunning{layer: i, name: l.Name, momentum: l.momentum(),
			mean: tensor.New(tensor.Of(dt), tensor.WithShape(l.Channels)),
			vari: tensor.New(tensor.Of(dt), tensor.WithShape(l.Channels))}
		fill(r.vari, func() float64 { return 1 })
		m.bn = append(m.bn, r)
	}
	return m, nil
}

func fill(t *tensor.Dense, f func() float64) {
	switch d := t.Data().(type) {
	case []float64:
		for i := range d {
			d[i] = f()
		}
	case []float32:
		for i := range d {
			d[i] = float32(f())
		}
	}
}

// Spec returns the model's layer-list spec (the zero Spec for a model made
// by NewDAG; see DAG).
func (m *Model) Spec() Spec { return m.spec }

// Dtype returns the parameters' dtype.
func (m *Model) Dtype() tensor.Dtype { return m.dt }

// Classes returns the number of output classes.
func (m *Model) Classes() int { return m.classes }

// InputShape returns the shape of one input example (without the batch axis).
func (m *Model) InputShape() []int { return append([]int{}, m.example...) }

// Params returns the parameters in model order (the order of the spec's
// layers, weight before bias). The tensors are the model's own: writing to
// them changes the model.
func (m *Model) Params() []Param { return append([]Param{}, m.params...) }

// ParamInfo returns names, shapes and fan-ins of the parameters in model order.
func (m *Model) ParamInfo() []ParamInfo { return append([]ParamInfo{}, m.info...) }

// RunningStats returns the running mean and (unbiased) variance of the
// batch-norm layer with the given name, used in evaluation mode.
func (m *Model) RunningStats(name string) (mean, variance *tensor.Dense, err error) {
	for _, r := range m.bn {
		if r.name == name {
			return r.mean, r.vari, nil
		}
	}
	return nil, nil, fmt.Errorf("nn: no batch-norm layer %q", name)
}

// Net is the forward graph of a Model for one batch size.
type Net struct {
	// X is the input node [N, input_shape...]; bind a value to it before running.
	X *gorgonia.Node
	// Params are the parameter nodes in model order, bound to the model's tensors.
	Params []*gorgonia.Node
	// Logits is the output [N·R, classes], R = RowsPerExample (1 except
	// for sequence models).
	Logits *gorgonia.Node
	// Train reports whether batch norm uses batch statistics (training mode).
	Train bool
	// bnStats are, in training mode, each batch-norm layer's batch mean and
	// biased variance nodes [C] and element count per channel.
	bnStats []bnStat
}

type bnStat struct {
	run        *bnRunning
	mean, vari *gorgonia.Node
	count      int
}

// Build adds the model's forward computation for a batch of size batch to g.
// In training mode batch norm uses batch statistics (differentiated
// through); otherwise it uses the running statistics. Every op is one of
// this package's twice-differentiable ops.
func (m *Model) Build(g *gorgonia.ExprGraph, batch int, train bool) (*Net, error) {
	if batch < 1 {
		return nil, fmt.Errorf("nn: batch size %d < 1", batch)
	}
	xs := append(tensor.Shape{batch}, m.example...)
	net := &Net{Train: train}
	net.X = gorgonia.NewTensor(g, m.dt, xs.Dims(), gorgonia.WithShape(xs...), gorgonia.WithName("x"))
	for _, p := range m.params {
		n := gorgonia.NewTensor(g, m.dt, p.Value.Shape().Dims(), gorgonia.WithShape(p.Value.Shape().Clone()...),
			gorgonia.WithName(p.Name), gorgonia.WithValue(p.Value))
		net.Params = append(net.Params, n)
	}
	if m.dag != nil {
		if err := m.buildDAG(g, net, batch, train); err != nil {
			return nil, err
		}
		return net, nil
	}
	h := net.X
	var err error
	pi, bi := 0, 0
	layers := m.spec.Layers
	for i := 0; i < len(layers); i++ {
		l := layers[i]
		wrap := func(e error) error { return fmt.Errorf("nn: layer %d (%s %q): %w", i, l.Type, l.Name, e) }
		switch l.Type {
		case LayerLinear:
			w, b := net.Params[pi], net.Params[pi+1]
			pi += 2
			if h, err = MatMul(h, w, false, false); err == nil {
				h, err = BiasAdd(h, b)
			}
		case LayerConv2d:
			w, b := net.Params[pi], net.Params[pi+1]
			pi += 2
			h, err = Conv2dBias(h, w, b, l.stride(), l.Pad)
		case LayerReLU:
			if i+1 < len(layers) && layers[i+1].Type == LayerMaxPool2d {
				// ReLU then max pooling: one fused op (same values and
				// derivatives of both orders, fewer passes over memory).
				p := layers[i+1]
				h, err = ReLUMaxPool2d(h, p.Kernel, p.stride())
				i++
				break
			}
			h, err = ReLU(h)
		case LayerTanh:
			h, err = Tanh(h)
		case LayerMaxPool2d:
			h, err = MaxPool2d(h, l.Kernel, l.stride())
		case LayerFlatten:
			h, err = Flatten(h)
		case LayerBatchNorm2d:
			gamma, beta := net.Params[pi], net.Params[pi+1]
			pi += 2
			run := m.bn[bi]
			bi++
			var st bnStat
			h, st, err = m.batchNorm(g, h, gamma, beta, run, l.eps(), train)
			if train && err == nil {
				net.bnStats = append(net.bnStats, st)
			}
		}
		if err != nil {
			return nil, wrap(err)
		}
	}
	net.Logits = h
	return net, nil
}

// batchNorm builds y = (x − μ)·γ/√(σ² + eps) + β per channel. In training
// mode μ and the biased σ² are the batch statistics over (N, H, W), built
// from twice-differentiable ops so the statistics are differentiated
// through; otherwise they are the running statistics.
func (m *Model) batchNorm(g *gorgonia.ExprGraph, x, gamma, beta *gorgonia.Node, run *bnRunning, eps float64, train bool) (*gorgonia.Node, bnStat, error) {
	xs := shapeOf(x)
	count := xs[0] * xs[2] * xs[3]
	var mean, vari *gorgonia.Node
	var xc *gorgonia.Node
	var err error
	// The broadcasts are folded into the ops that use them (AddN takes a
	// ChanBcast input as a per-channel bias, ChanMul and ChanDot scale and
	// reduce per channel), so no full-size broadcast tensor is made.
	var negMean *gorgonia.Node
	if train {
		s, err := ChanSum(x)
		if err != nil {
			return nil, bnStat{}, err
		}
		if mean, err = Scale(s, 1/float64(count)); err != nil {
			return nil, bnStat{}, err
		}
		// −μ from μ, so the mean node is computed (UpdateRunningStats reads it).
		if negMean, err = Scale(mean, -1); err != nil {
			return nil, bnStat{}, err
		}
	} else {
		c := xs[1]
		mean = gorgonia.NewTensor(g, m.dt, 1, gorgonia.WithShape(c), gorgonia.WithName(run.name+".running_mean"), gorgonia.WithValue(run.mean))
		vari = gorgonia.NewTensor(g, m.dt, 1, gorgonia.WithShape(c), gorgonia.WithName(run.name+".running_var"), gorgonia.WithValue(run.vari))
		var err error
		if negMean, err = Scale(mean, -1); err != nil {
			return nil, bnStat{}, err
		}
	}
	mb, err := ChanBcast(negMean, xs)
	if err != nil {
		return nil, bnStat{}, err
	}
	if xc, err = AddN(x, mb); err != nil {
		return nil, bnStat{}, err
	}
	if train {
		sq, err := ChanDot(xc, xc)
		if err != nil {
			return nil, bnStat{}, err
		}
		if vari, err = Scale(sq, 1/float64(count)); err != nil {
			return nil, bnStat{}, err
		}
	}
	r, err := Rsqrt(vari, eps)
	if err != nil {
		return nil, bnStat{}, err
	}
	sc, err := Mul(r, gamma)
	if err != nil {
		return nil, bnStat{}, err
	}
	y, err := ChanMul(xc, sc)
	if err != nil {
		return nil, bnStat{}, err
	}
	if y, err = BiasAdd(y, beta); err != nil {
		return nil, bnStat{}, err
	}
	return y, bnStat{run: run, mean: mean, vari: vari, count: count}, nil
}

// UpdateRunningStats folds the batch statistics of the last run of a
// training-mode net into the model's running statistics, as torch does:
// running ← (1 − momentum)·running + momentum·batch, with the batch variance
// made unbiased (× n/(n−1)). The first update after New overwrites the
// initial values in the same way (torch semantics, starting from 0 and 1).
func (m *Model) UpdateRunningStats(net *Net) error {
	for _, st := range net.bnStats {
		mv, ok1 := st.mean.Value().(*tensor.Dense)
		vv, ok2 := st.vari.Value().(*tensor.Dense)
		if !ok1 || !ok2 {
			return fmt.Errorf("nn: batch-norm layer %q: batch statistics not computed yet", st.run.name)
		}
		unb := 1.0
		if st.count > 1 {
			unb = float64(st.count) / float64(st.count-1)
		}
		mom := st.run.momentum
		switch rm := st.run.mean.Data().(type) {
		case []float64:
			updRunning(rm, st.run.vari.Data().([]float64), mv.Data().([]float64), vv.Data().([]float64), mom, unb)
		case []float32:
			updRunning(rm, st.run.vari.Data().([]float32), mv.Data().([]float32), vv.Data().([]float32), mom, unb)
		}
	}
	return nil
}

func updRunning[T Float](rm, rv, bm, bv []T, mom, unb float64) {
	for i := range rm {
		rm[i] = T((1-mom)*float64(rm[i]) + mom*float64(bm[i]))
		rv[i] = T((1-mom)*float64(rv[i]) + mom*unb*float64(bv[i]))
	}
}
