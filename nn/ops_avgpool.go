package nn

import (
	"fmt"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// avgPoolOp is average pooling of x [N, C, H, W] over K×K windows at stride
// S without padding (torch.nn.functional.avg_pool2d(x, K, S)), or, with bwd
// set, its adjoint [N, C, OH, OW] → [N, C, H, W] (each output's gradient
// spread evenly over its window). Both are linear and each is the other's
// derivative, so the pair is closed under differentiation.
type avgPoolOp struct {
	base
	bwd              bool
	n, c, h, w, k, s int
	oh, ow           int
}

// AvgPool2d returns the K×K average pooling of x [N, C, H, W] at stride S
// (no padding; trailing rows or columns that do not fill a window are
// dropped, as torch does).
func AvgPool2d(x *gorgonia.Node, k, stride int) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() != 4 {
		return nil, fmt.Errorf("nn: AvgPool2d wants [N, C, H, W], got %v", s)
	}
	if k < 1 || stride < 1 || k > s[2] || k > s[3] {
		return nil, fmt.Errorf("nn: AvgPool2d: kernel %d, stride %d do not fit input %v", k, stride, s)
	}
	op := &avgPoolOp{n: s[0], c: s[1], h: s[2], w: s[3], k: k, s: stride}
	op.oh, op.ow = (op.h-k)/stride+1, (op.w-k)/stride+1
	op.base = newBase(fmt.Sprintf("AvgPool2d(k%d s%d)", k, stride), dtypeOf(x), tensor.Shape{op.n, op.c, op.oh, op.ow}, s)
	return apply(op, x)
}

func (op *avgPoolOp) adjoint(g *gorgonia.Node) (*gorgonia.Node, error) {
	a := *op
	a.bwd = !op.bwd
	in, out := tensor.Shape{op.n, op.c, op.h, op.w}, tensor.Shape{op.n, op.c, op.oh, op.ow}
	name := "AvgPool2dBwd"
	if a.bwd {
		in, out = out, in
	} else {
		name = "AvgPool2d"
	}
	a.base = newBase(fmt.Sprintf("%s(k%d s%d)", name, op.k, op.s), op.dt, out, in)
	return apply(&a, g)
}

func (op *avgPoolOp) twiceDifferentiable() {}

func (op *avgPoolOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { avgPoolK(op, in[0], out) },
		func(in [][]float32, out []float32) { avgPoolK(op, in[0], out) })
}

func avgPoolK[T Float](op *avgPoolOp, a, out []T) {
	plane, oplane := op.h*op.w, op.oh*op.ow
	inv := 1 / float64(op.k*op.k)
	parallelFor(op.n*op.c, numWorkers(), max(1, minParallel/plane), func(_, lo, hi int) {
		for p := lo; p < hi; p++ {
			if op.bwd {
				g, x := a[p*oplane:(p+1)*oplane], out[p*plane:(p+1)*plane]
				clear(x)
				for i := 0; i < op.oh; i++ {
					for j := 0; j < op.ow; j++ {
						v := T(float64(g[i*op.ow+j]) * inv)
						for r := i * op.s; r < i*op.s+op.k; r++ {
							row := x[r*op.w+j*op.s : r*op.w+j*op.s+op.k]
							for q := range row {
								row[q] += v
							}
						}
					}
				}
				continue
			}
			x, y := a[p*plane:(p+1)*plane], out[p*oplane:(p+1)*oplane]
			for i := 0; i < op.oh; i++ {
				for j := 0; j < op.ow; j++ {
					var acc float64
					for r := i * op.s; r < i*op.s+op.k; r++ {
						for _, v := range x[r*op.w+j*op.s : r*op.w+j*op.s+op.k] {
							acc += float64(v)
						}
					}
					y[i*op.ow+j] = T(acc * inv)
				}
			}
		}
	})
}

func (op *avgPoolOp) DiffWRT(int) []bool { return []bool{true} }

func (op *avgPoolOp) SymDiff(_ gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	d, err := op.adjoint(g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{d}, nil
}

// GlobalAvgPool returns the mean of x [N, C, H, W] over H and W, [N, C]
// (torch's adaptive_avg_pool2d(x, 1) flattened), composed of Reshape,
// AxisSum and Scale.
func GlobalAvgPool(x *gorgonia.Node) (*gorgonia.Node, error) {
	s := shapeOf(x)
	if s.Dims() != 4 {
		return nil, fmt.Errorf("nn: GlobalAvgPool wants [N, C, H, W], got %v", s)
	}
	r, err := Reshape(x, tensor.Shape{s[0], s[1], s[2] * s[3]})
	if err != nil {
		return nil, err
	}
	sum, err := AxisSum(r, 2)
	if err != nil {
		return nil, err
	}
	return Scale(sum, 1/float64(s[2]*s[3]))
}
