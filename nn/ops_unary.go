package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
)

// unaryFamily is an elementwise function f given with its first derivatives
// f⁽⁰⁾ … f⁽ᵏ⁾. The op computing f⁽ʲ⁾(x) differentiates to G⊙f⁽ʲ⁺¹⁾(x)
// (unaryMulOp: the next member of the family times G in one op), so every
// derivative graph is again made of the family and Mul: with f, f′ and f″ given, gradients and
// Hessian-vector products are exact; one more derivative allows a third
// differentiation.
type unaryFamily struct {
	name  string
	deriv []func(float64) float64
	// f32[j], where present and non-nil, computes f⁽ʲ⁾ over a float32 slice
	// (a faster kernel that agrees with deriv[j] to float32 rounding).
	f32 []func(x, y []float32)
}

// unaryOp computes f⁽ʲ⁾(x) elementwise for one member j of a family.
type unaryOp struct {
	base
	fam *unaryFamily
	j   int
}

func applyUnary(fam *unaryFamily, j int, x *gorgonia.Node) (*gorgonia.Node, error) {
	if err := checkFloat(dtypeOf(x)); err != nil {
		return nil, err
	}
	if j >= len(fam.deriv) {
		return nil, fmt.Errorf("nn: %s: derivative of order %d is not available", fam.name, j)
	}
	name := fam.name
	if j > 0 {
		name = fmt.Sprintf("%s⁽%d⁾", fam.name, j)
	}
	op := &unaryOp{base: newBase(name, dtypeOf(x), shapeOf(x), shapeOf(x)), fam: fam, j: j}
	return apply(op, x)
}

func (op *unaryOp) twiceDifferentiable() {}

func (op *unaryOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	f := op.fam.deriv[op.j]
	var k32 func(x, y []float32)
	if op.j < len(op.fam.f32) {
		k32 = op.fam.f32[op.j]
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { unaryK(f, in[0], out) },
		func(in [][]float32, out []float32) {
			if k32 == nil {
				unaryK(f, in[0], out)
				return
			}
			x := in[0]
			forEach(len(out), func(lo, hi int) { k32(x[lo:hi], out[lo:hi]) })
		})
}

func unaryK[T Float](f func(float64) float64, x, y []T) {
	forEach(len(y), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = T(f(float64(x[i])))
		}
	})
}

func (op *unaryOp) DiffWRT(int) []bool { return []bool{true} }

func (op *unaryOp) SymDiff(in gorgonia.Nodes, _, g *gorgonia.Node) (gorgonia.Nodes, error) {
	gd, err := applyUnaryMul(op.fam, op.j+1, in[0], g)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{gd}, nil
}

// unaryMulOp computes G⊙f⁽ʲ⁾(x) for one member j of a family: the
// derivative of f⁽ʲ⁻¹⁾ with the upstream gradient G folded in (one pass and
// one tensor where f⁽ʲ⁾(x) and a Mul took two). Each element is
// G·f⁽ʲ⁾(x) with f⁽ʲ⁾(x) rounded to the element type first, as the Mul
// computed it. Its derivatives are G⊙U⊙f⁽ʲ⁺¹⁾(x) for x (unaryMulOp(j+1)
// of Mul(U, G)) and U⊙f⁽ʲ⁾(x) for G (unaryMulOp(j) of U), so the family
// stays closed under differentiation.
type unaryMulOp struct {
	base
	fam *unaryFamily
	j   int
}

func applyUnaryMul(fam *unaryFamily, j int, x, g *gorgonia.Node) (*gorgonia.Node, error) {
	if err := checkFloat(dtypeOf(x)); err != nil {
		return nil, err
	}
	if j >= len(fam.deriv) {
		return nil, fmt.Errorf("nn: %s: derivative of order %d is not available", fam.name, j)
	}
	if err := sameShapes(fam.name+" derivative", x, g); err != nil {
		return nil, err
	}
	op := &unaryMulOp{base: newBase(fmt.Sprintf("G⊙%s⁽%d⁾", fam.name, j), dtypeOf(x), shapeOf(x), shapeOf(x), shapeOf(x)), fam: fam, j: j}
	return apply(op, x, g)
}

func (op *unaryMulOp) twiceDifferentiable() {}

// unaryMulBlock is how many elements a fast float32 kernel writes before
// they are scaled by G (while still in cache).
const unaryMulBlock = 2048

func (op *unaryMulOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	f := op.fam.deriv[op.j]
	var k32 func(x, y []float32)
	if op.j < len(op.fam.f32) {
		k32 = op.fam.f32[op.j]
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { unaryMulK(f, in[0], in[1], out) },
		func(in [][]float32, out []float32) {
			if k32 == nil {
				unaryMulK(f, in[0], in[1], out)
				return
			}
			x, g := in[0], in[1]
			forEach(len(out), func(lo, hi int) {
				for b := lo; b < hi; b += unaryMulBlock {
					e := min(b+unaryMulBlock, hi)
					k32(x[b:e], out[b:e])
					vecMul(g[b:e], out[b:e], out[b:e])
				}
			})
		})
}

func unaryMulK[T Float](f func(float64) float64, x, g, y []T) {
	forEach(len(y), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			y[i] = g[i] * T(f(float64(x[i])))
		}
	})
}

func (op *unaryMulOp) DiffWRT(int) []bool { return []bool{true, true} }

func (op *unaryMulOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	x, g := in[0], in[1]
	dg, err := applyUnaryMul(op.fam, op.j, x, u)
	if err != nil {
		return nil, err
	}
	ug, err := Mul(u, g)
	if err != nil {
		return nil, err
	}
	dx, err := applyUnaryMul(op.fam, op.j+1, x, ug)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, dg}, nil
}

func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}

var (
	expFamily = &unaryFamily{name: "Exp", deriv: []func(float64) float64{math.Exp, math.Exp, math.Exp, math.Exp}}
	logFamily = &unaryFamily{name: "Log", deriv: []func(float64) float64{
		math.Log,
		func(x float64) float64 { return 1 / x },
		func(x float64) float64 { return -1 / (x * x) },
		func(x float64) float64 { return 2 / (x * x * x) },
	}}
	// σ′ = σ(1−σ), σ″ = σ′(1−2σ), σ‴ = σ′(1 − 6σ + 6σ²).
	sigmoidFamily = &unaryFamily{name: "Sigmoid", deriv: []func(float64) float64{
		sigmoid,
		func(x float64) float64 { s := sigmoid(x); return s * (1 - s) },
		func(x float64) float64 { s := sigmoid(x); return s * (1 - s) * (1 - 2*s) },
		func(x float64) float64 { s := sigmoid(x); return s * (1 - s) * (1 - 6*s + 6*s*s) },
	}}
	// GELU, exact form: f = x·Φ(x); f′ = Φ + xφ; f″ = φ(2 − x²);
	// f‴ = φ(x³ − 4x), with φ the standard normal density.
	geluErfFamily = &unaryFamily{name: "GELU", deriv: []func(float64) float64{
		func(x float64) float64 { return x * normCDF(x) },
		func(x float64) float64 { return normCDF(x) + x*normPDF(x) },
		func(x float64) float64 { return normPDF(x) * (2 - x*x) },
		func(x float64) float64 { return normPDF(x) * (x*x*x - 4*x) },
	}}
	geluTanhFamily = &unaryFamily{name: "GELUTanh", deriv: []func(float64) float64{geluTanh0, geluTanh1, geluTanh2, geluTanh3},
		f32: []func(x, y []float32){geluTanh0F32, geluTanh1F32, geluTanh2F32}}
)

func normPDF(x float64) float64 { return math.Exp(-x*x/2) / math.Sqrt(2*math.Pi) }
func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// GELU, tanh form (GPT-2): f = ½x(1 + tanh u), u = c(x + a·x³),
// c = √(2/π), a = 0.044715. With t = tanh u, s = 1 − t², u′ = c(1 + 3a·x²),
// u″ = 6ac·x, u‴ = 6ac:
//
//	f′ = ½(1 + t) + ½x·s·u′
//	f″ = s·B,  B = u′ − x·t·u′² + ½x·u″
//	f‴ = −2t·s·u′·B + s·(1.5u″ − t·u′² − x·s·u′³ − 2x·t·u′·u″ + ½x·u‴)
const (
	geluC = 0.7978845608028654 // √(2/π)
	geluA = 0.044715
)

func geluU(x float64) (t, u1, u2, u3 float64) {
	t = fastTanh(geluC * (x + geluA*x*x*x))
	return t, geluC * (1 + 3*geluA*x*x), 6 * geluA * geluC * x, 6 * geluA * geluC
}

// fastTanh is tanh(u) = sign(u)·e/(e + 2) with e = e^{2|u|} − 1 (math.Expm1,
// accurate near 0): one exponential-type call, faster than math.Tanh and
// within a few ulp of it.
func fastTanh(u float64) float64 {
	a := math.Abs(u)
	if a > 20 {
		return math.Copysign(1, u)
	}
	e := math.Expm1(2 * a)
	return math.Copysign(e/(e+2), u)
}

// geluTanh0 is ½x(1 + tanh u) = x·σ(2u) with one exponential.
func geluTanh0(x float64) float64 {
	u := geluC * (x + geluA*x*x*x)
	return x * sigmoid(2*u)
}

func geluTanh1(x float64) float64 {
	t, u1, _, _ := geluU(x)
	return 0.5*(1+t) + 0.5*x*(1-t*t)*u1
}

func geluTanh2(x float64) float64 {
	t, u1, u2, _ := geluU(x)
	return (1 - t*t) * (u1 - x*t*u1*u1 + 0.5*x*u2)
}

func geluTanh3(x float64) float64 {
	t, u1, u2, u3 := geluU(x)
	s := 1 - t*t
	b := u1 - x*t*u1*u1 + 0.5*x*u2
	db := 1.5*u2 - t*u1*u1 - x*s*u1*u1*u1 - 2*x*t*u1*u2 + 0.5*x*u3
	return -2*t*s*u1*b + s*db
}

// Exp returns eˣ elementwise.
func Exp(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(expFamily, 0, x) }

// Log returns ln x elementwise (NaN or −Inf where x ≤ 0, which the engine
// reports as a non-finite loss).
func Log(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(logFamily, 0, x) }

// Sigmoid returns 1/(1 + e⁻ˣ) elementwise.
func Sigmoid(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(sigmoidFamily, 0, x) }

// GELU returns the exact Gaussian error linear unit x·Φ(x) elementwise
// (torch.nn.functional.gelu with approximate="none").
func GELU(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(geluErfFamily, 0, x) }

// GELUTanh returns the tanh approximation of GELU used by GPT-2,
// ½x(1 + tanh(√(2/π)(x + 0.044715x³))) (torch's approximate="tanh").
func GELUTanh(x *gorgonia.Node) (*gorgonia.Node, error) { return applyUnary(geluTanhFamily, 0, x) }

// unaryFamilies lists the families for tests.
var unaryFamilies = []*unaryFamily{expFamily, logFamily, sigmoidFamily, geluErfFamily, geluTanhFamily}
