package nn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestReLUMaxPoolMatchesComposition checks that the fused op gives the same
// bits as MaxPool2d(ReLU(x)) for the value, the gradient with respect to x
// (scatter) and a second differentiation with respect to the seed (gather),
// on inputs with ties, signed zeros and all-negative windows, for tiled,
// ragged and overlapping windows in both dtypes.
func TestReLUMaxPoolMatchesComposition(t *testing.T) {
	cases := []struct{ n, c, h, w, k, s int }{
		{2, 3, 8, 8, 2, 2}, {1, 2, 7, 9, 2, 2}, {2, 2, 7, 7, 3, 2}, {1, 3, 5, 6, 2, 1}, {1, 1, 6, 6, 3, 3},
	}
	pool := []float64{-2, -1, -0.5, 0, math.Copysign(0, -1), 0.5, 1, 1, 2}
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range cases {
			rng := rand.New(rand.NewPCG(uint64(tc.h), uint64(tc.k)))
			xv := make([]float64, tc.n*tc.c*tc.h*tc.w)
			for i := range xv {
				xv[i] = pool[rng.IntN(len(pool))]
				if i%11 == 0 {
					xv[i] = -1 - rng.Float64() // some all-negative windows
				}
			}
			oh, ow := (tc.h-tc.k)/tc.s+1, (tc.w-tc.k)/tc.s+1
			cv := make([]float64, tc.n*tc.c*oh*ow)
			for i := range cv {
				cv[i] = rng.NormFloat64()
			}
			vv := make([]float64, len(xv))
			for i := range vv {
				vv[i] = rng.NormFloat64()
			}
			run := func(fused bool) [3][]float64 {
				g := gorgonia.NewGraph()
				mk := func(name string, v []float64, shape ...int) *gorgonia.Node {
					d := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
					setData(d, v)
					return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(d))
				}
				x := mk("x", xv, tc.n, tc.c, tc.h, tc.w)
				c := mk("c", cv, tc.n, tc.c, oh, ow)
				v := mk("v", vv, tc.n, tc.c, tc.h, tc.w)
				var y *gorgonia.Node
				var err error
				if fused {
					y, err = ReLUMaxPool2d(x, tc.k, tc.s)
				} else {
					var r *gorgonia.Node
					r, err = ReLU(x)
					require.NoError(t, err)
					y, err = MaxPool2d(r, tc.k, tc.s)
				}
				require.NoError(t, err)
				gx, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{c}, []*gorgonia.Node{x})
				require.NoError(t, err)
				gc, err := Backprop([]*gorgonia.Node{gx[0]}, []*gorgonia.Node{v}, []*gorgonia.Node{c})
				require.NoError(t, err)
				m := gorgonia.NewTapeMachine(g)
				defer m.Close()
				require.NoError(t, m.RunAll())
				return [3][]float64{getData(y.Value().(*tensor.Dense)), getData(gx[0].Value().(*tensor.Dense)), getData(gc[0].Value().(*tensor.Dense))}
			}
			want, got := run(false), run(true)
			for k := range want {
				require.Equal(t, len(want[k]), len(got[k]))
				for i := range want[k] {
					require.Equal(t, math.Float64bits(want[k][i]), math.Float64bits(got[k][i]), "%v %+v output %d index %d: %v vs %v", dt, tc, k, i, want[k][i], got[k][i])
				}
			}
		}
	}
}

// TestConv2dBiasMatchesComposition checks Conv2dBias against
// BiasAdd(Conv2d) for the value and the gradients of Σ y·c (bitwise for the
// value, x and W; the bias gradient to rounding).
func TestConv2dBiasMatchesComposition(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		rng := rand.New(rand.NewPCG(5, 6))
		rnd := func(n int) []float64 {
			v := make([]float64, n)
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			return v
		}
		xv, wv, bv, cv := rnd(2*3*6*5), rnd(4*3*3*3), rnd(4), rnd(2*4*6*5)
		run := func(fused bool) [][]float64 {
			g := gorgonia.NewGraph()
			mk := func(name string, v []float64, shape ...int) *gorgonia.Node {
				d := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
				setData(d, v)
				return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(d))
			}
			x, w, b, c := mk("x", xv, 2, 3, 6, 5), mk("w", wv, 4, 3, 3, 3), mk("b", bv, 4), mk("c", cv, 2, 4, 6, 5)
			var y *gorgonia.Node
			var err error
			if fused {
				y, err = Conv2dBias(x, w, b, 1, 1)
			} else {
				y, err = Conv2d(x, w, 1, 1)
				require.NoError(t, err)
				y, err = BiasAdd(y, b)
			}
			require.NoError(t, err)
			gs, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{c}, []*gorgonia.Node{x, w, b})
			require.NoError(t, err)
			m := gorgonia.NewTapeMachine(g)
			defer m.Close()
			require.NoError(t, m.RunAll())
			out := [][]float64{getData(y.Value().(*tensor.Dense))}
			for _, n := range gs {
				out = append(out, getData(n.Value().(*tensor.Dense)))
			}
			return out
		}
		want, got := run(false), run(true)
		for k := 0; k < 3; k++ {
			require.Equal(t, want[k], got[k], "%v output %d", dt, k)
		}
		require.InDeltaSlice(t, want[3], got[3], 1e-12)
	}
}

// TestAddNFoldsChanBcast checks AddN(x, ChanBcast(b), y) — which folds the
// broadcast into the sum — against the definition, with gradients.
func TestAddNFoldsChanBcast(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	rnd := func(n int) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		return v
	}
	xv, yv, bv, sv := rnd(2*3*4*5), rnd(2*3*4*5), rnd(3), rnd(2*3*4*5)
	g := gorgonia.NewGraph()
	mk := func(name string, v []float64, shape ...int) *gorgonia.Node {
		d := tensor.New(tensor.WithShape(shape...), tensor.WithBacking(append([]float64{}, v...)))
		return gorgonia.NewTensor(g, tensor.Float64, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(d))
	}
	x, y, b, seed := mk("x", xv, 2, 3, 4, 5), mk("y", yv, 2, 3, 4, 5), mk("b", bv, 3), mk("s", sv, 2, 3, 4, 5)
	cb, err := ChanBcast(b, tensor.Shape{2, 3, 4, 5})
	require.NoError(t, err)
	sum, err := AddN(x, cb, y)
	require.NoError(t, err)
	require.NotNil(t, sum.Op().(*addNOp).bias, "broadcast folded")
	gs, err := Backprop([]*gorgonia.Node{sum}, []*gorgonia.Node{seed}, []*gorgonia.Node{x, b})
	require.NoError(t, err)
	m := gorgonia.NewTapeMachine(g.SubgraphRoots(sum, gs[0], gs[1]))
	defer m.Close()
	require.NoError(t, m.RunAll())
	got := sum.Value().Data().([]float64)
	db := make([]float64, 3)
	for i := range got {
		ch := (i / 20) % 3
		require.Equal(t, xv[i]+bv[ch]+yv[i], got[i])
		db[ch] += sv[i]
	}
	require.Equal(t, sv, gs[0].Value().Data().([]float64))
	require.InDeltaSlice(t, db, gs[1].Value().Data().([]float64), 1e-12)
}
