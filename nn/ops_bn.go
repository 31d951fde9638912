package nn

import (
	"fmt"
	"math"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fused training-mode batch norm, optionally followed by ReLU.
//
// For x [N, C, …] (M = N·H·W values per channel) the forward pass is two
// ops, S = BNMoments(x) and a = BNApply(x, S, γ, β):
//
//	S = (μ, σ²) per channel (biased variance), r = 1/√(σ² + eps),
//	x̂ = (x − μ)·r,  y = γ·x̂ + β,  a = y (or ReLU(y), mask m = [a > 0]).
//
// S is a stop-gradient node: every op that reads S takes x too and its
// SymDiff returns the total derivative with respect to x, through μ and r
// as well, so no derivative flows into S. With h = m⊙g the first
// derivatives are
//
//	dβ = Σh,  dγ = Σ h·x̂,  dx = γ·r·(h − Σh/M − x̂·Σ h x̂/M)
//
// built as R = BNGradStats(x, S, a, g) = (Σh, Σh·x̂) [2, C], dβ and dγ its
// rows, and dx = BNGradX(x, S, γ, a, g, R): one reduction pass and one
// element-wise pass, where the composed ops of Model.batchNorm take some
// sixteen. BNGradStats and BNGradX are differentiated again in closed form
// (see their SymDiff), with ops that only appear in second-derivative
// graphs (bnReduceOp's three-row form below; bnLinOp, bnCoefOp and the row
// picks in ops_bn_second.go). AddReLU, the residual sum and ReLU in one op
// that the fused ResNet blocks use, is in ops_addrelu.go.
//
// The ReLU's mask is piecewise constant: its derivative is zero wherever it
// exists, as for ReLU itself.

// bnGeom is the layout of a batch-norm input and its epsilon.
type bnGeom struct {
	outer, c, inner int
	eps             float64
	relu            bool
}

// m returns M, the values per channel.
func (g bnGeom) m() float64 { return float64(g.outer * g.inner) }

// bnStatOf returns μ and r = 1/√(σ²+eps) of channel ch from S = (μ, σ²).
func bnStatOf[T Float](s []T, c, ch int, eps float64) (mu, r float64) {
	return float64(s[ch]), 1 / math.Sqrt(float64(s[c+ch])+eps)
}

func newBNGeom(x *gorgonia.Node, eps float64, relu bool) (bnGeom, error) {
	outer, c, inner, err := channelLayout(shapeOf(x))
	if err != nil {
		return bnGeom{}, err
	}
	if err := checkFloat(dtypeOf(x)); err != nil {
		return bnGeom{}, err
	}
	if !(eps >= 0) || math.IsInf(eps, 0) {
		return bnGeom{}, fmt.Errorf("nn: batch norm: eps %v must be finite and >= 0", eps)
	}
	return bnGeom{outer: outer, c: c, inner: inner, eps: eps, relu: relu}, nil
}

// checkBNInput checks that n, a per-channel parameter, is [C] of dtype dt.
func checkBNInput(what string, n *gorgonia.Node, g bnGeom, dt tensor.Dtype) error {
	want := tensor.Shape{g.c}
	if !shapeOf(n).Eq(want) || dtypeOf(n) != dt {
		return fmt.Errorf("nn: batch norm: %s is %v %v, want %v %v", what, dtypeOf(n), shapeOf(n), dt, want)
	}
	return nil
}

// ---------------------------------------------------------------- moments

// bnMomentsOp computes S = (μ, σ²) [2, C] of x over all axes but 1, in one
// pass with float64 sums shifted by each channel's first value (so that a
// large common offset does not cancel). It is not differentiable: its
// readers account for it (see the file comment).
type bnMomentsOp struct {
	base
	bnGeom
	acc   [][]float64
	shift []float64
}

// BNMoments returns the per-channel batch mean and biased variance of x
// [N, C, …] as one [2, C] node (row 0 the means, row 1 the variances).
func BNMoments(x *gorgonia.Node) (*gorgonia.Node, error) {
	g, err := newBNGeom(x, 0, false)
	if err != nil {
		return nil, err
	}
	op := &bnMomentsOp{base: newBase("BNMoments", dtypeOf(x), tensor.Shape{2, g.c}, shapeOf(x)), bnGeom: g}
	return apply(op, x)
}

func (op *bnMomentsOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.acc == nil {
		op.acc = make([][]float64, numWorkers())
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) {
			bnMoments(in[0], out, op.bnGeom, op.acc, growF64(&op.shift, op.c))
		},
		func(in [][]float32, out []float32) {
			bnMoments(in[0], out, op.bnGeom, op.acc, growF64(&op.shift, op.c))
		})
}

// DiffWRT is false: S is a stop-gradient node.
func (op *bnMomentsOp) DiffWRT(int) []bool { return []bool{false} }

// SymDiff is never called (DiffWRT is false).
func (op *bnMomentsOp) SymDiff(gorgonia.Nodes, *gorgonia.Node, *gorgonia.Node) (gorgonia.Nodes, error) {
	return nil, fmt.Errorf("nn: BNMoments is not differentiable")
}

// bnMoments sets s = (μ, σ²) from the sums of d = x − K and of d², K the
// channel's first value, in float64 (the shift keeps a large common offset
// from cancelling); shift [C] is scratch.
func bnMoments[T Float](x, s []T, g bnGeom, acc [][]float64, shift []float64) {
	c, inner := g.c, g.inner
	for ch := range shift {
		shift[ch] = float64(x[ch*inner]) // the channel's first value
	}
	// acc[w] holds Σd in [0, c) and Σd² in [c, 2c).
	workers := min(len(acc), 64)
	if g.outer*c*inner < minParallel {
		workers = 1
	}
	var used [64]bool
	parallelFor(g.outer, workers, 1, func(w, lo, hi int) {
		used[w] = true
		a := growF64(&acc[w], 2*c)
		clear(a)
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				sd, sq := shiftedMoments(x[(o*c+ch)*inner:(o*c+ch+1)*inner], T(-shift[ch]))
				a[ch] += sd
				a[c+ch] += sq
			}
		}
	})
	n := g.m()
	for ch := 0; ch < c; ch++ {
		var sd, sq float64
		for w := 0; w < workers; w++ {
			if used[w] {
				sd += acc[w][ch]
				sq += acc[w][c+ch]
			}
		}
		d := sd / n
		s[ch] = T(shift[ch] + d)
		s[c+ch] = T(max(0, sq/n-d*d))
	}
}

// ---------------------------------------------------------------- apply

// bnApplyOp is a = γ·(x − μ)·r + β, or its ReLU, with S = (μ, σ²) from
// BNMoments(x).
type bnApplyOp struct {
	base
	bnGeom
}

// BNApply returns γ·(x − μ)/√(σ² + eps) + β per channel (ReLU of it if relu
// is set), for S = BNMoments(x): training-mode batch norm whose derivatives
// of both orders go through the batch statistics.
func BNApply(x, s, gamma, beta *gorgonia.Node, eps float64, relu bool) (*gorgonia.Node, error) {
	g, err := newBNGeom(x, eps, relu)
	if err != nil {
		return nil, err
	}
	dt := dtypeOf(x)
	if err := checkBNMoments(x, s); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		what string
		n    *gorgonia.Node
	}{{"γ", gamma}, {"β", beta}} {
		if err := checkBNInput(p.what, p.n, g, dt); err != nil {
			return nil, err
		}
	}
	name := "BNApply"
	if relu {
		name = "BNApplyReLU"
	}
	op := &bnApplyOp{base: newBase(name, dt, shapeOf(x), shapeOf(x), shapeOf(s), shapeOf(gamma), shapeOf(beta)), bnGeom: g}
	return apply(op, x, s, gamma, beta)
}

// checkBNMoments checks that s is BNMoments(x): the stop-gradient contract
// of the fused ops holds only for that node.
func checkBNMoments(x, s *gorgonia.Node) error {
	if _, ok := s.Op().(*bnMomentsOp); !ok {
		return fmt.Errorf("nn: batch norm: statistics node %q is not BNMoments of its input", s.Name())
	}
	if ch := children(s); len(ch) != 1 || ch[0] != x {
		return fmt.Errorf("nn: batch norm: statistics node %q is not BNMoments of %q", s.Name(), x.Name())
	}
	return nil
}

func (op *bnApplyOp) twiceDifferentiable() {}

func (op *bnApplyOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { bnApply(in[0], in[1], in[2], in[3], out, op.bnGeom) },
		func(in [][]float32, out []float32) { bnApply(in[0], in[1], in[2], in[3], out, op.bnGeom) })
}

func bnApply[T Float](x, s, gamma, beta, y []T, g bnGeom) {
	c, inner := g.c, g.inner
	parallelFor(g.outer, numWorkers(), max(1, minParallel/max(1, c*inner)), func(_, lo, hi int) {
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				mu, r := bnStatOf(s, c, ch, g.eps)
				off := (o*c + ch) * inner
				yr := y[off : off+inner]
				// (x − μ)·(γ·r) + β, centred first as the composed ops
				// (and torch) do, so a large mean does not cancel digits
				affineRow(x[off:off+inner], yr, T(mu), T(float64(gamma[ch])*r), beta[ch], g.relu)
			}
		}
	})
}

// affineRow sets y = (x − mu)·k + b, each operation rounded as written
// (x − mu, then the product, then the sum), and with relu then y = y where
// y > +0 by its bits and 0 elsewhere (MaskMul's convention: positive NaNs
// pass): one pass with the AVX2 kernel for float32.
func affineRow[T Float](x, y []T, mu, k, b T, relu bool) {
	y = y[:len(x)]
	i, xs := ewSplit(x)
	if i > 0 {
		ewAffine32(&xs[0], &any(y).([]float32)[0], i, float32(mu), float32(k), float32(b), relu)
	}
	for ; i < len(x); i++ {
		v := T((x[i]-mu)*k) + b
		if relu && !positive(v) {
			v = 0
		}
		y[i] = v
	}
}

// reluInPlace sets y = max(y, 0) (MaskMul's convention: positive NaNs pass).
func reluInPlace[T Float](y []T) {
	switch ys := any(y).(type) {
	case []float32:
		maskMul32(ys, ys, ys)
	case []float64:
		maskMul64(ys, ys, ys)
	}
}

// DiffWRT: x, γ and β (not S, see the file comment).
func (op *bnApplyOp) DiffWRT(int) []bool { return []bool{true, false, true, true} }

func (op *bnApplyOp) SymDiff(in gorgonia.Nodes, out, grad *gorgonia.Node) (gorgonia.Nodes, error) {
	x, s, gamma := in[0], in[1], in[2]
	a := x // the mask's source; without ReLU there is none and x is a placeholder
	if op.relu {
		a = out
	}
	r, err := bnGradStats(x, s, a, grad, op.bnGeom)
	if err != nil {
		return nil, err
	}
	db, err := bnPick(r, 0)
	if err != nil {
		return nil, err
	}
	dg, err := bnPick(r, 1)
	if err != nil {
		return nil, err
	}
	dx, err := bnGradX(x, s, gamma, a, grad, r, op.bnGeom)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, nil, dg, db}, nil
}

// ---------------------------------------------------------------- reductions

// bnReduceOp computes per channel, with w' = m⊙w where maskW (m = [a > 0]
// under ReLU, else 1):
//
//	rows 2: (Σw', r·Σ w'·(x − μ))            BNGradStats (w = g: (Σh, Σh·x̂))
//	rows 3: (Σw', Σ w'·(x − μ), Σ w'·m⊙t)   BNGradX's second derivative
//
// one pass over x, a, w (and t), sums in float64.
type bnReduceOp struct {
	base
	bnGeom
	rows  int
	maskW bool
	acc   [][]float64
	buf   [][]float64 // per worker: one row of m⊙w or m⊙t (float64)
	buf32 [][]float32
}

// newBNReduce builds the reduction over (x, S, a, w), and t with 3 rows.
func newBNReduce(name string, x, s, a, w, t *gorgonia.Node, g bnGeom, rows int, maskW bool) (*gorgonia.Node, error) {
	ins := gorgonia.Nodes{x, s, a, w}
	shapes := []tensor.Shape{shapeOf(x), shapeOf(s), shapeOf(x), shapeOf(x)}
	if rows == 3 {
		ins = append(ins, t)
		shapes = append(shapes, shapeOf(x))
	}
	if err := sameShapes(name, append(gorgonia.Nodes{x, a, w}, ins[4:]...)...); err != nil {
		return nil, err
	}
	op := &bnReduceOp{base: newBase(name, dtypeOf(x), tensor.Shape{rows, g.c}, shapes...), bnGeom: g, rows: rows, maskW: maskW}
	return apply(op, ins...)
}

// bnGradStats returns (Σh, Σh·x̂) [2, C], h = m⊙g.
func bnGradStats(x, s, a, g *gorgonia.Node, geom bnGeom) (*gorgonia.Node, error) {
	return newBNReduce("BNGradStats", x, s, a, g, nil, geom, 2, true)
}

func (op *bnReduceOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	if op.acc == nil {
		op.acc = make([][]float64, numWorkers())
		op.buf = make([][]float64, numWorkers())
		op.buf32 = make([][]float32, numWorkers())
	}
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { bnReduce(in, out, op, op.buf) },
		func(in [][]float32, out []float32) { bnReduce(in, out, op, op.buf32) })
}

func bnReduce[T Float](in [][]T, out []T, op *bnReduceOp, bufs [][]T) {
	x, s, a, w := in[0], in[1], in[2], in[3]
	var t []T
	if op.rows == 3 {
		t = in[4]
	}
	g := op.bnGeom
	c, inner, rows := g.c, g.inner, op.rows
	mask := g.relu
	workers := min(len(op.acc), 64)
	if g.outer*c*inner < minParallel {
		workers = 1
	}
	var used [64]bool
	parallelFor(g.outer, workers, 1, func(wk, lo, hi int) {
		used[wk] = true
		acc := growF64(&op.acc[wk], rows*c)
		clear(acc)
		if len(bufs[wk]) < inner {
			bufs[wk] = make([]T, inner)
		}
		buf := bufs[wk][:inner]
		for o := lo; o < hi; o++ {
			for ch := 0; ch < c; ch++ {
				off := (o*c + ch) * inner
				xr, wr := x[off:off+inner], w[off:off+inner]
				var ar []T // w' = w masked by a > 0, or w
				if mask && op.maskW {
					ar = a[off : off+inner]
				}
				mu := float64(s[ch])
				sw, swx := sumDotF64(wr, xr, ar)
				acc[ch] += sw
				acc[c+ch] += swx - mu*sw
				if rows == 3 {
					tr := t[off : off+inner]
					if mask {
						maskRow(a[off:off+inner], tr, buf)
						tr = buf
					}
					acc[2*c+ch] += dotF64(w[off:off+inner], tr)
				}
			}
		}
	})
	for i := 0; i < rows*c; i++ {
		var v float64
		for wk := 0; wk < workers; wk++ {
			if used[wk] {
				v += op.acc[wk][i]
			}
		}
		if rows == 2 && i >= c {
			_, r := bnStatOf(s, c, i-c, g.eps)
			v *= r
		}
		out[i] = T(v)
	}
}

// maskRow sets o = v where a > 0 and 0 elsewhere.
func maskRow[T Float](a, v, o []T) {
	switch as := any(a).(type) {
	case []float32:
		maskMul32(as, any(v).([]float32), any(o).([]float32))
	case []float64:
		maskMul64(as, any(v).([]float64), any(o).([]float64))
	}
}

func (op *bnReduceOp) twiceDifferentiable() {}

// DiffWRT: BNGradStats is differentiable in x and g; the 3-row reduction
// only appears in second-derivative graphs.
func (op *bnReduceOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	if op.rows == 2 && n == 4 {
		d[0], d[3] = true, true
	}
	return d
}

// SymDiff of R = (Σh, Σh·x̂) with upstream P = (p0, p1):
//
//	∂g = m⊙(p0 + p1·x̂)
//	∂x = r·p1·(h − R0/M − x̂·R1/M)        (through x̂, μ and r)
func (op *bnReduceOp) SymDiff(in gorgonia.Nodes, out, p *gorgonia.Node) (gorgonia.Nodes, error) {
	if op.rows != 2 {
		return nil, fmt.Errorf("nn: %s is not differentiable", op.name)
	}
	x, s, a, g := in[0], in[1], in[2], in[3]
	geom := op.bnGeom
	n := geom.m()
	kg, err := bnCoef("BNGradStatsCoefG", geom, 3, func(c int, in [][]float64, k []float64) {
		sv, pv := in[0], in[1]
		for ch := 0; ch < c; ch++ {
			_, r := bnStatOf(sv, c, ch, geom.eps)
			k[ch], k[c+ch], k[2*c+ch] = pv[ch], pv[c+ch]*r, 0
		}
	}, s, p)
	if err != nil {
		return nil, err
	}
	dg, err := bnLin(x, s, a, g, kg, geom, bnMaskAll, false)
	if err != nil {
		return nil, err
	}
	kx, err := bnCoef("BNGradStatsCoefX", geom, 3, func(c int, in [][]float64, k []float64) {
		sv, pv, rv := in[0], in[1], in[2]
		for ch := 0; ch < c; ch++ {
			_, r := bnStatOf(sv, c, ch, geom.eps)
			p1 := pv[c+ch]
			k[ch], k[c+ch], k[2*c+ch] = -r*p1*rv[ch]/n, -r*r*p1*rv[c+ch]/n, r*p1
		}
	}, s, p, out)
	if err != nil {
		return nil, err
	}
	dx, err := bnLin(x, s, a, g, kx, geom, bnMaskT, true)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, nil, nil, dg}, nil
}

// ---------------------------------------------------------------- dx

// bnGradXOp is dx = γ·r·(h − R0/M − x̂·R1/M), h = m⊙g, R = BNGradStats.
type bnGradXOp struct {
	base
	bnGeom
}

func bnGradX(x, s, gamma, a, g, r *gorgonia.Node, geom bnGeom) (*gorgonia.Node, error) {
	op := &bnGradXOp{base: newBase("BNGradX", dtypeOf(x), shapeOf(x), shapeOf(x), shapeOf(s), shapeOf(gamma), shapeOf(x), shapeOf(x), shapeOf(r)), bnGeom: geom}
	return apply(op, x, s, gamma, a, g, r)
}

func (op *bnGradXOp) twiceDifferentiable() {}

func (op *bnGradXOp) Do(vs ...gorgonia.Value) (gorgonia.Value, error) {
	return run(&op.base, vs,
		func(in [][]float64, out []float64) { bnGradXKernel(in, out, op.bnGeom) },
		func(in [][]float32, out []float32) { bnGradXKernel(in, out, op.bnGeom) })
}

func bnGradXKernel[T Float](in [][]T, out []T, g bnGeom) {
	x, s, gamma, a, gv, r := in[0], in[1], in[2], in[3], in[4], in[5]
	c, n := g.c, g.m()
	bnLinRows(x, s, a, gv, out, g, bnMaskT, true, func(ch int) (k0, k1, k2 float64) {
		_, rs := bnStatOf(s, c, ch, g.eps)
		gr := float64(gamma[ch]) * rs
		return -gr * float64(r[ch]) / n, -gr * rs * float64(r[c+ch]) / n, gr
	})
}

// DiffWRT: x, γ, g and R.
func (op *bnGradXOp) DiffWRT(int) []bool { return []bool{true, false, true, false, true, true} }

// SymDiff of dx = γ·r·(h − R0/M − x̂·R1/M) with upstream u, where
// Q = (Σu, Σu·(x−μ), Σ u·h) and ∂γ = r·(Q2 − R0·Q0/M − r·R1·Q1/M):
//
//	∂g = γ·r·m⊙u
//	∂γ as above
//	∂R = (−γ·r·Q0/M, −γ·r²·Q1/M)
//	∂x = −(γ·r²·R1/M)·(u − Q0/M − x̂·r·Q1/M) − γ·∂γ·r·x̂/M
//
// (the last through x̂ with μ and r, and through the leading r, whose
// derivative is −r²·x̂/M).
func (op *bnGradXOp) SymDiff(in gorgonia.Nodes, _, u *gorgonia.Node) (gorgonia.Nodes, error) {
	x, s, gamma, a, g, r := in[0], in[1], in[2], in[3], in[4], in[5]
	geom := op.bnGeom
	n := geom.m()
	q, err := newBNReduce("BNGradXReduce", x, s, a, u, g, geom, 3, false)
	if err != nil {
		return nil, err
	}
	// dgam computes ∂γ of channel ch from S, R, Q.
	dgam := func(c, ch int, sv, rv, qv []float64) float64 {
		_, rs := bnStatOf(sv, c, ch, geom.eps)
		return rs * (qv[2*c+ch] - rv[ch]*qv[ch]/n - rs*rv[c+ch]*qv[c+ch]/n)
	}
	dGamma, err := bnCoef("BNGradXDGamma", geom, 0, func(c int, in [][]float64, k []float64) {
		for ch := 0; ch < c; ch++ {
			k[ch] = dgam(c, ch, in[0], in[1], in[2])
		}
	}, s, r, q)
	if err != nil {
		return nil, err
	}
	dR, err := bnCoef("BNGradXDR", geom, 2, func(c int, in [][]float64, k []float64) {
		sv, gv, qv := in[0], in[1], in[2]
		for ch := 0; ch < c; ch++ {
			_, rs := bnStatOf(sv, c, ch, geom.eps)
			gr := gv[ch] * rs
			k[ch], k[c+ch] = -gr*qv[ch]/n, -gr*rs*qv[c+ch]/n
		}
	}, s, gamma, q)
	if err != nil {
		return nil, err
	}
	kg, err := bnCoef("BNGradXCoefG", geom, 3, func(c int, in [][]float64, k []float64) {
		sv, gv := in[0], in[1]
		for ch := 0; ch < c; ch++ {
			_, rs := bnStatOf(sv, c, ch, geom.eps)
			k[ch], k[c+ch], k[2*c+ch] = 0, 0, gv[ch]*rs
		}
	}, s, gamma)
	if err != nil {
		return nil, err
	}
	dg, err := bnLin(x, s, a, u, kg, geom, bnMaskAll, true)
	if err != nil {
		return nil, err
	}
	kx, err := bnCoef("BNGradXCoefX", geom, 3, func(c int, in [][]float64, k []float64) {
		sv, gv, rv, qv := in[0], in[1], in[2], in[3]
		for ch := 0; ch < c; ch++ {
			_, rs := bnStatOf(sv, c, ch, geom.eps)
			gm, r2 := gv[ch], rs*rs
			b := gm * r2 * rv[c+ch] / n // γ·r²·R1/M
			k[ch] = b * qv[ch] / n
			k[c+ch] = b*r2*qv[c+ch]/n - gm*dgam(c, ch, sv, rv, qv)*r2/n
			k[2*c+ch] = -b
		}
	}, s, gamma, r, q)
	if err != nil {
		return nil, err
	}
	dx, err := bnLin(x, s, a, u, kx, geom, bnMaskNone, true)
	if err != nil {
		return nil, err
	}
	return gorgonia.Nodes{dx, nil, dGamma, nil, dg, dR}, nil
}
