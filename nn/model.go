package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// Param is one named parameter tensor of a Model.
type Param struct {
	Name  string
	Value *tensor.Dense
}

// bnRunning holds a batch-norm node's running statistics for evaluation.
type bnRunning struct {
	name       string
	mean, vari *tensor.Dense // [C]
	momentum   float64
}

// Model is a network built from a DAG (a layer-list Spec converts to one
// with Spec.DAG; MLP, CNN, ResNet and GPT return one): its parameters (owned
// here, bound by reference into every graph Build makes, so in-place
// updates are seen by the next run), the running statistics of its
// batch-norm nodes and, when it has dropout, the state fixing its masks.
type Model struct {
	d      DAG
	info   *dagInfo
	dt     tensor.Dtype
	params []Param
	bn     []*bnRunning
	drop   *DropoutState // nil without dropout nodes
	sync   BatchReducer  // synchronised batch norm (nil: per-process statistics)
}

// New builds a model from the DAG d with parameters of dtype dt
// (tensor.Float32 or tensor.Float64), initialised from rng node by node,
// weight before bias (see DAGNode): by default as torch does, linear and
// conv2d weights and biases from U(−1/√fan_in, 1/√fan_in), where fan_in is
// the input width (linear) or C·K·K (conv2d) — the bound of torch's
// kaiming_uniform_(a=√5) — and embeddings from N(0, 1); a node with
// InitStd > 0 draws its weights from N(0, InitStd²) and leaves its biases
// 0. Batch-norm and layer-norm γ = 1 and β = 0, with running mean 0 and
// running variance 1. A nil rng leaves all other parameters zero (for
// loading values afterwards). Dropout masks are drawn from
// NewDropoutState(seed) (see Model.DropoutState).
func New(d DAG, dt tensor.Dtype, rng *rand.Rand, seed uint64) (*Model, error) {
	if err := checkFloat(dt); err != nil {
		return nil, err
	}
	info, err := d.check()
	if err != nil {
		return nil, err
	}
	m := &Model{d: d, info: info, dt: dt}
	for i, n := range d.Nodes {
		lo, hi := info.first[i], len(info.params)
		if i+1 < len(d.Nodes) {
			hi = info.first[i+1]
		}
		for _, pi := range info.params[lo:hi] {
			t := tensor.New(tensor.Of(dt), tensor.WithShape(pi.Shape...))
			initParam(t, pi, n.InitStd, rng)
			m.params = append(m.params, Param{Name: pi.Name, Value: t})
		}
		switch n.Op {
		case OpBatchNorm2d:
			c := info.params[lo].Shape[0]
			r := &bnRunning{name: n.Name, momentum: n.momentum(),
				mean: tensor.New(tensor.Of(dt), tensor.WithShape(c)), vari: tensor.New(tensor.Of(dt), tensor.WithShape(c))}
			fill(r.vari, func() float64 { return 1 })
			m.bn = append(m.bn, r)
		case OpDropout:
			if m.drop == nil {
				m.drop = NewDropoutState(seed)
			}
		}
	}
	return m, nil
}

// initParam initialises one parameter (see New).
func initParam(t *tensor.Dense, pi ParamInfo, std float64, rng *rand.Rand) {
	switch pi.Kind {
	case "bn_weight":
		fill(t, func() float64 { return 1 })
		return
	case "bn_bias":
		return
	}
	if rng == nil {
		return
	}
	switch {
	case std > 0 && pi.Kind == "bias":
	case std > 0:
		fill(t, func() float64 { return std * rng.NormFloat64() })
	case pi.Kind == "embedding":
		fill(t, rng.NormFloat64)
	default:
		bound := 1 / math.Sqrt(float64(pi.FanIn))
		fill(t, func() float64 { return (2*rng.Float64() - 1) * bound })
	}
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

// DAG returns the model's description.
func (m *Model) DAG() DAG { return m.d }

// Dtype returns the parameters' dtype.
func (m *Model) Dtype() tensor.Dtype { return m.dt }

// Classes returns the number of output classes.
func (m *Model) Classes() int { return m.info.classes }

// InputShape returns the shape of one input example (without the batch axis).
func (m *Model) InputShape() []int { return append([]int{}, m.d.InputShape...) }

// RowsPerExample is the number of logit rows (and labels) per example: 1,
// or T for a model whose output is [T, classes] (next-token prediction).
func (m *Model) RowsPerExample() int { return m.info.rows }

// Params returns the parameters in model order (nodes in order, weight
// before bias). The tensors are the model's own: writing to them changes
// the model.
func (m *Model) Params() []Param { return append([]Param{}, m.params...) }

// ParamInfo returns names, shapes and fan-ins of the parameters in model order.
func (m *Model) ParamInfo() []ParamInfo { return append([]ParamInfo{}, m.info.params...) }

// RunningStats returns the running mean and (unbiased) variance of the
// batch-norm node with the given name, used in evaluation mode.
func (m *Model) RunningStats(name string) (mean, variance *tensor.Dense, err error) {
	for _, r := range m.bn {
		if r.name == name {
			return r.mean, r.vari, nil
		}
	}
	return nil, nil, fmt.Errorf("nn: no batch-norm layer %q", name)
}

// BatchNormNames returns the names of the model's batch-norm nodes, in
// model order: the names RunningStats takes.
func (m *Model) BatchNormNames() []string {
	names := make([]string, len(m.bn))
	for i, r := range m.bn {
		names[i] = r.name
	}
	return names
}

// DropoutState returns the state that fixes the dropout masks of the
// model's training graphs, nil for a model without dropout nodes: the
// masks stay the same for every run until Next, so the gradient and the
// Hessian-vector product of one step see the same function. The engine
// calls Next at every SetBatch.
func (m *Model) DropoutState() *DropoutState { return m.drop }

// values returns the batch mean and variance of the last run ([]float64 or
// []float32, the model's dtype).
func (st bnStat) values() (mean, vari any, err error) {
	if st.moments != nil {
		v, ok := st.moments.Value().(*tensor.Dense)
		if !ok {
			return nil, nil, fmt.Errorf("nn: batch-norm layer %q: batch statistics not computed yet", st.run.name)
		}
		switch d := v.Data().(type) {
		case []float64:
			return d[:len(d)/2], d[len(d)/2:], nil
		case []float32:
			return d[:len(d)/2], d[len(d)/2:], nil
		}
		return nil, nil, fmt.Errorf("nn: batch-norm layer %q: statistics of dtype %v", st.run.name, v.Dtype())
	}
	mv, ok1 := st.mean.Value().(*tensor.Dense)
	vv, ok2 := st.vari.Value().(*tensor.Dense)
	if !ok1 || !ok2 {
		return nil, nil, fmt.Errorf("nn: batch-norm layer %q: batch statistics not computed yet", st.run.name)
	}
	return mv.Data(), vv.Data(), nil
}

// UpdateRunningStats folds the batch statistics of the last run of a
// training-mode net into the model's running statistics, as torch does:
// running ← (1 − momentum)·running + momentum·batch, with the batch variance
// made unbiased (× n/(n−1)). The first update after New overwrites the
// initial values in the same way (torch semantics, starting from 0 and 1).
func (m *Model) UpdateRunningStats(net *Net) error {
	for _, st := range net.bnStats {
		mv, vv, err := st.values()
		if err != nil {
			return err
		}
		unb := 1.0
		if c := st.globalCount(); c > 1 {
			unb = float64(c) / float64(c-1)
		}
		mom := st.run.momentum
		switch rm := st.run.mean.Data().(type) {
		case []float64:
			updRunning(rm, st.run.vari.Data().([]float64), mv.([]float64), vv.([]float64), mom, unb)
		case []float32:
			updRunning(rm, st.run.vari.Data().([]float32), mv.([]float32), vv.([]float32), mom, unb)
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
