package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// softmaxRow writes softmax(z) into s (float64) and returns log Σ exp(z).
func softmaxRow[T Float](z []T, s []float64) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		if f := float64(v); f > m {
			m = f
		}
	}
	var sum float64
	for i, v := range z {
		e := math.Exp(float64(v) - m)
		s[i] = e
		sum += e
	}
	for i := range s {
		s[i] /= sum
	}
	return m + math.Log(sum)
}

// ceOp is the mean softmax cross-entropy of logits z [N, C] against targets Y
// [N, C] (one-hot rows for integer labels):
//
//	L = (1/N) Σₙ [log Σⱼ exp(zₙⱼ) − Σⱼ Yₙⱼ zₙⱼ],  output shape [1].
//
// ∂L/∂z = (g/N)(softmax(z) − Y) for upstream g (ceBwdOp). Y is data: no
// derivative is taken with respect to it.
type ceOp struct {
	base
	n, c int
	s    []float64
}

// CrossEntropy returns the mean softmax cross-entropy of logits [N, C]
// against one-hot (or probability) targets [N, C], as a [1]-shaped node.
func CrossEntropy(logits, targets *gorgonia.Node) (*gorgonia.Node, error) {
	if err := sameShapes("CrossEntropy", logits, targets); err != nil {
		return nil, err
	}
	zs := shapeOf(logits)
	if zs.Dims() != 2 {
		return nil, fmt.Errorf("nn: CrossEntropy wants logits [N, C], got %v", zs)
	}
	op := &ceOp{base: newBase("CrossEntropy", dtypeOf(logits), tensor.Shape{1}, zs, zs), n: zs[0], c: zs[1], s: make([]float64, zs[1])}
	return apply(op, logits, targets)
}

func (op *ceOp) twiceDifferentiable() {}

func (op *ceOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { out[0] = ceFwd(in[0], in[1], op.s, op.n, op.c) },
		func(in [][]float32, out []float32) { out[0] = float32(ceFwd(in[0], in[1], op.s, op.n, op.c)) })
}

func ceFwd[T Float](z, y []T, s []float64, n, c int) float64 {
	var acc float64
	for r := 0; r < n; r++ {
		zr, yr := z[r*c:(r+1)*c], y[r*c:(r+1)*c]
		lse := softmaxRow(zr, s)
		var yz float64
		for j, v := range zr {
			yz += float64(yr[j]) * float64(v)
		}
		acc += lse - yz
	}
	return acc / float64(n)
}

func (op *ceOp) DiffWRT(int) []bool { return []bool{true, false} }

func (op *ceOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := newCEBwd(in[0], in[1], g, op.n, op.c)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d, nil}, nil
}

// ceBwdOp computes D = (g/N)(softmax(z) − Y) for z, Y [N, C] and g [1].
// Its derivatives (upstream U [N, C]):
//
//	∂/∂z = (g/N)·(s⊙U − s·⟨s, U⟩ per row)   (softmaxJVPOp; symmetric Jacobian)
//	∂/∂g = (1/N)·Σ ⟨U, s − Y⟩               (ceBwdDotOp)
//
// Those two ops are only evaluated, never differentiated again (third order).
type ceBwdOp struct {
	base
	n, c int
	s    []float64
}

func newCEBwd(z, y, g *gorgonia.Node, n, c int) (*gorgonia.Node, error) {
	zs := shapeOf(z)
	op := &ceBwdOp{base: newBase("CrossEntropyBwd", dtypeOf(z), zs, zs, zs, tensor.Shape{1}), n: n, c: c, s: make([]float64, c)}
	return apply(op, z, y, g)
}

func (op *ceBwdOp) twiceDifferentiable() {}

func (op *ceBwdOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { ceBwd(in[0], in[1], in[2][0], out, op.s, op.n, op.c) },
		func(in [][]float32, out []float32) { ceBwd(in[0], in[1], in[2][0], out, op.s, op.n, op.c) })
}

func ceBwd[T Float](z, y []T, g T, out []T, s []float64, n, c int) {
	k := float64(g) / float64(n)
	for r := 0; r < n; r++ {
		softmaxRow(z[r*c:(r+1)*c], s)
		yr, or := y[r*c:(r+1)*c], out[r*c:(r+1)*c]
		for j := range or {
			or[j] = T(k * (s[j] - float64(yr[j])))
		}
	}
}

func (op *ceBwdOp) DiffWRT(int) []bool { return []bool{true, false, true} }

func (op *ceBwdOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	z, y, g := in[0], in[1], in[2]
	zs := shapeOf(z)
	jv := &softmaxJVPOp{base: newBase("SoftmaxJVP", op.dt, zs, zs, zs, tensor.Shape{1}), n: op.n, c: op.c, s: make([]float64, op.c)}
	dz, err := apply(jv, z, u, g)
	if err != nil {
		return nil, err
	}
	dd := &ceBwdDotOp{base: newBase("CrossEntropyBwdDot", op.dt, tensor.Shape{1}, zs, zs, zs), n: op.n, c: op.c, s: make([]float64, op.c)}
	dg, err := apply(dd, z, y, u)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dz, nil, dg}, nil
}

// softmaxJVPOp computes (g/N)·(s⊙U − s·⟨s, U⟩) row by row, s = softmax(z).
// It appears only in second-derivative graphs and is not differentiable.
type softmaxJVPOp struct {
	base
	n, c int
	s    []float64
}

func (op *softmaxJVPOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { softmaxJVP(in[0], in[1], in[2][0], out, op.s, op.n, op.c) },
		func(in [][]float32, out []float32) { softmaxJVP(in[0], in[1], in[2][0], out, op.s, op.n, op.c) })
}

func softmaxJVP[T Float](z, u []T, g T, out []T, s []float64, n, c int) {
	k := float64(g) / float64(n)
	for r := 0; r < n; r++ {
		softmaxRow(z[r*c:(r+1)*c], s)
		ur, or := u[r*c:(r+1)*c], out[r*c:(r+1)*c]
		var su float64
		for j, v := range ur {
			su += s[j] * float64(v)
		}
		for j, v := range ur {
			or[j] = T(k * s[j] * (float64(v) - su))
		}
	}
}

// ceBwdDotOp computes (1/N)·Σ ⟨U, softmax(z) − Y⟩ as a [1] tensor. It appears
// only in second-derivative graphs and is not differentiable.
type ceBwdDotOp struct {
	base
	n, c int
	s    []float64
}

func (op *ceBwdDotOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { out[0] = ceBwdDot(in[0], in[1], in[2], op.s, op.n, op.c) },
		func(in [][]float32, out []float32) { out[0] = float32(ceBwdDot(in[0], in[1], in[2], op.s, op.n, op.c)) })
}

func ceBwdDot[T Float](z, y, u []T, s []float64, n, c int) float64 {
	var acc float64
	for r := 0; r < n; r++ {
		softmaxRow(z[r*c:(r+1)*c], s)
		yr, ur := y[r*c:(r+1)*c], u[r*c:(r+1)*c]
		for j := range ur {
			acc += float64(ur[j]) * (s[j] - float64(yr[j]))
		}
	}
	return acc / float64(n)
}

// LabelSampler draws one class label per row from row-wise probability
// distributions. Sampling from the model's own softmax gives the labels of
// Sophia's Gauss-Newton-Bartlett estimator.
type LabelSampler interface {
	// Sample sets labels[r] to a draw from probs[r·classes : (r+1)·classes]
	// (non-negative, summing to 1) for every row r.
	Sample(probs []float64, classes int, labels []int) error
}

// sampleOp draws labels from softmax(z) with a LabelSampler and outputs them
// one-hot [N, C]. It is data, not a differentiable function of z.
type sampleOp struct {
	base
	n, c    int
	sampler LabelSampler
	probs   []float64
	labels  []int
}

// SampledTargets returns one-hot targets [N, C] whose labels are drawn from
// softmax(logits) by sampler every time the graph runs. The drawn labels are
// readable through SampledLabels. The node is not differentiable.
func SampledTargets(logits *gorgonia.Node, sampler LabelSampler) (*gorgonia.Node, error) {
	zs := shapeOf(logits)
	if zs.Dims() != 2 {
		return nil, fmt.Errorf("nn: SampledTargets wants logits [N, C], got %v", zs)
	}
	if sampler == nil {
		return nil, fmt.Errorf("nn: SampledTargets: nil sampler")
	}
	op := &sampleOp{base: newBase("SampledTargets", dtypeOf(logits), zs, zs), n: zs[0], c: zs[1], sampler: sampler,
		probs: make([]float64, zs[0]*zs[1]), labels: make([]int, zs[0])}
	return apply(op, logits)
}

// SampledLabels returns the labels drawn in the last run by a node made by
// SampledTargets (shared memory, overwritten by the next run).
func SampledLabels(n *gorgonia.Node) ([]int, error) {
	op, ok := n.Op().(*sampleOp)
	if !ok {
		return nil, fmt.Errorf("nn: node %v was not made by SampledTargets", n)
	}
	return op.labels, nil
}

func (op *sampleOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	var serr error
	v, err := run(&op.base, vs,
		func(in [][]float64, out []float64) { serr = sampleK(op, in[0], out) },
		func(in [][]float32, out []float32) { serr = sampleK(op, in[0], out) })
	if err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	return v, nil
}

func sampleK[T Float](op *sampleOp, z, out []T) error {
	for r := 0; r < op.n; r++ {
		softmaxRow(z[r*op.c:(r+1)*op.c], op.probs[r*op.c:(r+1)*op.c])
	}
	if err := op.sampler.Sample(op.probs, op.c, op.labels); err != nil {
		return fmt.Errorf("nn: sampling labels: %w", err)
	}
	clear(out)
	for r, l := range op.labels {
		if l < 0 || l >= op.c {
			return fmt.Errorf("nn: sampler returned label %d for row %d, want [0, %d)", l, r, op.c)
		}
		out[r*op.c+l] = 1
	}
	return nil
}
