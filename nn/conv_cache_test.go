package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convWeightGradRef is dW[o,c,p,q] = Σ_{n,i,j} g[n,o,i,j]·xpad[n,c,i·S+p,j·S+q].
func convWeightGradRef(x, g []float64, n, c, h, w, o, k, s, pad int) []float64 {
	oh, ow := (h+2*pad-k)/s+1, (w+2*pad-k)/s+1
	dw := make([]float64, o*c*k*k)
	for b := 0; b < n; b++ {
		for oo := 0; oo < o; oo++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					gv := g[((b*o+oo)*oh+i)*ow+j]
					for cc := 0; cc < c; cc++ {
						for p := 0; p < k; p++ {
							for q := 0; q < k; q++ {
								hh, ww := i*s+p-pad, j*s+q-pad
								if hh < 0 || hh >= h || ww < 0 || ww >= w {
									continue
								}
								dw[((oo*c+cc)*k+p)*k+q] += gv * x[((b*c+cc)*h+hh)*w+ww]
							}
						}
					}
				}
			}
		}
	}
	return dw
}

// TestConvColumnCacheNeverStale runs the weight gradient of a convolution
// on a machine that does not contain the forward op (so the family's column
// cache was filled by another machine), after changing the input in place:
// the result must follow the new input, in both dtypes.
func TestConvColumnCacheNeverStale(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		const n, c, h, w, o, k, s, pad = 3, 2, 6, 5, 4, 3, 1, 1
		rng := rand.New(rand.NewPCG(3, 4))
		mk := func(shape ...int) (*tensor.Dense, []float64) {
			t := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
			ref := make([]float64, tensor.Shape(shape).TotalSize())
			for i := range ref {
				ref[i] = rng.NormFloat64()
			}
			setData(t, ref)
			return t, ref
		}
		xt, xv := mk(n, c, h, w)
		wt, _ := mk(o, c, k, k)
		gt, gv := mk(n, o, h, w)
		g := gorgonia.NewGraph()
		xn := gorgonia.NewTensor(g, dt, 4, gorgonia.WithShape(n, c, h, w), gorgonia.WithName("x"), gorgonia.WithValue(xt))
		wn := gorgonia.NewTensor(g, dt, 4, gorgonia.WithShape(o, c, k, k), gorgonia.WithName("w"), gorgonia.WithValue(wt))
		gn := gorgonia.NewTensor(g, dt, 4, gorgonia.WithShape(n, o, h, w), gorgonia.WithName("g"), gorgonia.WithValue(gt))
		y, err := Conv2d(xn, wn, s, pad)
		require.NoError(t, err)
		gs, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{gn}, []*gorgonia.Node{wn})
		require.NoError(t, err)
		full := gorgonia.NewTapeMachine(g.SubgraphRoots(y, gs[0]))
		defer full.Close()
		only := gorgonia.NewTapeMachine(g.SubgraphRoots(gs[0]))
		defer only.Close()
		tol := 1e-12
		if dt == tensor.Float32 {
			tol = 1e-4
		}
		check := func(m gorgonia.VM) {
			m.Reset()
			require.NoError(t, m.RunAll())
			want := convWeightGradRef(xv, gv, n, c, h, w, o, k, s, pad)
			require.Less(t, maxAbsDiff(getData(gs[0].Value().(*tensor.Dense)), want), tol, "%v", dt)
		}
		check(full)
		check(only)
		for i := range xv {
			xv[i] = rng.NormFloat64()
		}
		setData(xt, xv) // same tensor, new contents
		check(only)
		check(full)
		check(only)
	}
}

func setData(t *tensor.Dense, v []float64) {
	switch d := t.Data().(type) {
	case []float64:
		copy(d, v)
	case []float32:
		for i, x := range v {
			d[i] = float32(x)
		}
	}
}

func getData(t *tensor.Dense) []float64 {
	switch d := t.Data().(type) {
	case []float64:
		return append([]float64{}, d...)
	case []float32:
		out := make([]float64, len(d))
		for i, x := range d {
			out[i] = float64(x)
		}
		return out
	}
	return nil
}

// TestIm2colSameMatchesGeneral compares the "same"-padding fast path with the
// general im2col on odd and even sizes and kernels 1, 3 and 5.
func TestIm2colSameMatchesGeneral(t *testing.T) {
	for _, tc := range []struct{ c, h, w, k int }{{3, 7, 7, 3}, {2, 5, 9, 3}, {2, 6, 4, 5}, {1, 1, 1, 1}, {2, 3, 3, 1}, {1, 2, 2, 3}, {4, 16, 16, 3}} {
		g, err := newConvGeom(tensor.Shape{1, tc.c, tc.h, tc.w}, tensor.Shape{2, tc.c, tc.k, tc.k}, 1, (tc.k-1)/2)
		require.NoError(t, err)
		x := make([]float64, tc.c*tc.h*tc.w)
		for i := range x {
			x[i] = float64(i + 1)
		}
		want := make([]float64, g.ckk*g.pix)
		got := make([]float64, g.ckk*g.pix)
		for i := range got {
			got[i] = -7 // must be overwritten
		}
		im2colSame(&g, x, got)
		im2colGeneral(&g, x, want)
		require.Equal(t, want, got, "%+v", tc)
	}
}

// TestCol2imSameMatchesGeneral compares the "same"-padding adjoint fast path
// with the general col2im (bitwise: same additions in the same order per cell).
func TestCol2imSameMatchesGeneral(t *testing.T) {
	for _, tc := range []struct{ c, h, w, k int }{{3, 7, 7, 3}, {2, 5, 9, 3}, {2, 6, 4, 5}, {1, 1, 1, 1}, {2, 3, 3, 1}, {1, 2, 2, 3}, {4, 16, 16, 3}, {2, 32, 32, 3}, {2, 8, 8, 5}} {
		g, err := newConvGeom(tensor.Shape{1, tc.c, tc.h, tc.w}, tensor.Shape{2, tc.c, tc.k, tc.k}, 1, (tc.k-1)/2)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(1, uint64(tc.k)))
		col := make([]float64, g.ckk*g.pix)
		for i := range col {
			col[i] = rng.NormFloat64()
		}
		want := make([]float64, tc.c*tc.h*tc.w)
		got := make([]float64, len(want))
		col2imGeneral(&g, col, want)
		col2imSame(&g, col, got)
		require.Equal(t, want, got, "%+v", tc)
		// float32 (the vector adds), from a fresh copy of the columns.
		col32 := make([]float32, len(col))
		for i := range col32 {
			col32[i] = float32(rng.NormFloat64())
		}
		want32, got32 := make([]float32, len(want)), make([]float32, len(want))
		col2imGeneral(&g, col32, want32)
		col2imSame(&g, col32, got32)
		require.Equal(t, want32, got32, "%+v float32", tc)
	}
}

// TestConvBwdWBothForms checks the weight gradient in each form (gy·colsᵀ,
// cols·gyᵀ, and float32 dot products where canDot allows) against its definition dW[o,c,p,q] = Σ gy[n,o,i,j]·
// xpad[n,c,i·S+p,j·S+q] in float64, for output channel counts that do and
// do not fill the micro-kernel's panels (16, 32, 64, 40), in both element
// types.
func TestConvBwdWBothForms(t *testing.T) {
	var ran [3]bool
	for _, tc := range []struct{ n, c, o, hw, k, s, p int }{
		{3, 5, 16, 9, 3, 1, 1}, {3, 5, 32, 9, 3, 1, 1}, {3, 4, 16, 8, 3, 1, 1}, {2, 8, 32, 8, 1, 2, 0},
		{2, 4, 8, 32, 3, 1, 1}, {1, 4, 4, 24, 3, 1, 1}, // k = OH·OW ≥ dotMinK: the dot form {2, 7, 64, 8, 3, 2, 1}, {2, 4, 40, 6, 1, 2, 0}, {2, 3, 32, 7, 3, 1, 0},
	} {
		g, err := newConvGeom([]int{tc.n, tc.c, tc.hw, tc.hw}, []int{tc.o, tc.c, tc.k, tc.k}, tc.s, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		x64 := make([]float64, g.n*g.c*g.plen)
		gy64 := make([]float64, g.n*g.o*g.pix)
		rng := rand.New(rand.NewPCG(7, uint64(tc.o)))
		for i := range x64 {
			x64[i] = rng.NormFloat64()
		}
		for i := range gy64 {
			gy64[i] = rng.NormFloat64()
		}
		want := make([]float64, g.o*g.ckk)
		for n := 0; n < g.n; n++ {
			for o := 0; o < g.o; o++ {
				for c := 0; c < g.c; c++ {
					for p := 0; p < g.k; p++ {
						for q := 0; q < g.k; q++ {
							var s float64
							for i := 0; i < g.oh; i++ {
								for j := 0; j < g.ow; j++ {
									h, w := i*g.s+p-g.p, j*g.s+q-g.p
									if h < 0 || h >= g.h || w < 0 || w >= g.w {
										continue
									}
									s += gy64[((n*g.o+o)*g.oh+i)*g.ow+j] * x64[((n*g.c+c)*g.h+h)*g.w+w]
								}
							}
							want[((o*g.c+c)*g.k+p)*g.k+q] += s
						}
					}
				}
			}
		}
		x32, gy32 := make([]float32, len(x64)), make([]float32, len(gy64))
		for i, v := range x64 {
			x32[i] = float32(v)
		}
		for i, v := range gy64 {
			gy32[i] = float32(v)
		}
		for trans := range 3 {
			var s64, s32 any
			d64, d32 := make([]float64, len(want)), make([]float32, len(want))
			if trans != bwdWDot {
				convBwdWPath(&g, &s64, &colShare{}, x64, gy64, d64, trans)
			} else {
				copy(d64, want)
				if !canDot(g.o, g.ckk, g.pix) {
					continue
				}
			}
			convBwdWPath(&g, &s32, &colShare{}, x32, gy32, d32, trans)
			ran[trans] = true
			got32 := make([]float64, len(d32))
			for i, v := range d32 {
				got32[i] = float64(v)
			}
			if e := relErr(d64, want); e > 1e-13 {
				t.Errorf("%+v form %d float64: relative error %g", tc, trans, e)
			}
			if e := relErr(got32, want); e > 1e-6 {
				t.Errorf("%+v form %d float32: relative error %g", tc, trans, e)
			}
		}
	}
	if haveAVX512 && !ran[bwdWDot] {
		t.Error("no case took the dot form")
	}
}
