package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convFwdRef is y[n,o,i,j] = Σ_{c,p,q} w[o,c,p,q]·xpad[n,c,i·S+p,j·S+q] in
// float64.
func convFwdRef(x, w []float64, n, c, h, wd, o, k, s, pad int) []float64 {
	oh, ow := (h+2*pad-k)/s+1, (wd+2*pad-k)/s+1
	y := make([]float64, n*o*oh*ow)
	for b := 0; b < n; b++ {
		for oo := 0; oo < o; oo++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var sum float64
					for cc := 0; cc < c; cc++ {
						for p := 0; p < k; p++ {
							for q := 0; q < k; q++ {
								hh, ww := i*s+p-pad, j*s+q-pad
								if hh < 0 || hh >= h || ww < 0 || ww >= wd {
									continue
								}
								sum += w[((oo*c+cc)*k+p)*k+q] * x[((b*c+cc)*h+hh)*wd+ww]
							}
						}
					}
					y[((b*o+oo)*oh+i)*ow+j] = sum
				}
			}
		}
	}
	return y
}

// convBwdXRef is dx[n,c,h,w] = Σ_{o,i,j,p,q: i·S+p−P = h, j·S+q−P = w}
// g[n,o,i,j]·w[o,c,p,q] in float64 (the adjoint of convFwdRef in x).
func convBwdXRef(g, w []float64, n, c, h, wd, o, k, s, pad int) []float64 {
	oh, ow := (h+2*pad-k)/s+1, (wd+2*pad-k)/s+1
	dx := make([]float64, n*c*h*wd)
	for b := 0; b < n; b++ {
		for oo := 0; oo < o; oo++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					gv := g[((b*o+oo)*oh+i)*ow+j]
					for cc := 0; cc < c; cc++ {
						for p := 0; p < k; p++ {
							for q := 0; q < k; q++ {
								hh, ww := i*s+p-pad, j*s+q-pad
								if hh < 0 || hh >= h || ww < 0 || ww >= wd {
									continue
								}
								dx[((b*c+cc)*h+hh)*wd+ww] += gv * w[((oo*c+cc)*k+p)*k+q]
							}
						}
					}
				}
			}
		}
	}
	return dx
}

type implicitCase struct{ n, c, o, h, w int }

// implicitCases are random shapes (C, O in 1..17, H, W in 1..9, batch
// 1..3) plus fixed ones: 1×1 planes, odd sizes, the direct compact
// output's widths, and shapes where the
// weight gradient's dot form (L = H·(W+2) ≥ 512, also with C not a
// multiple of four) and whole micro-kernel panels (O = 32) apply.
func implicitCases() []implicitCase {
	rng := rand.New(rand.NewPCG(21, 3))
	cs := []implicitCase{{1, 1, 1, 1, 1}, {2, 3, 2, 1, 1}, {1, 1, 1, 1, 7}, {3, 5, 7, 9, 1}, {2, 17, 17, 9, 9},
		{2, 4, 4, 16, 30}, {1, 8, 32, 5, 7}, {2, 16, 16, 8, 8},
		// the dot form with C widened to a multiple of
		// four: a first convolution's three channels, and five
		{2, 3, 16, 16, 30}, {1, 5, 4, 16, 30},
		// implicitGemmCompact (float32 AVX-512): rows of 16 (each tile
		// spans two rows), 32 and 48 (a tile's halves in one row or
		// across two), eight- and four-row channel blocks
		{2, 5, 12, 6, 16}, {1, 3, 8, 2, 32}, {2, 4, 4, 4, 48},
		// and 8 wide (four rows a tile, the quarter-row kernels), with
		// eight- and four-row channel blocks
		{1, 5, 12, 8, 8}, {2, 3, 4, 4, 8}}
	for range 40 {
		cs = append(cs, implicitCase{1 + rng.IntN(3), 1 + rng.IntN(17), 1 + rng.IntN(17), 1 + rng.IntN(9), 1 + rng.IntN(9)})
	}
	return cs
}

func randSlice(rng *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	return v
}

func to32(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func from32(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// checkClose fails t unless got is within the dtype's tolerance of want
// (norm-wise relative error, and elementwise against the largest |want|);
// a NaN in got fails it.
func checkClose(t *testing.T, got, want []float64, f32 bool, what string) {
	t.Helper()
	rel, abs := 1e-13, 1e-12
	if f32 {
		rel, abs = 2e-6, 2e-5
	}
	var scale float64 = 1
	for _, v := range want {
		scale = max(scale, v, -v)
	}
	// negated comparisons, so that a NaN anywhere fails too
	if e := relErr(got, want); !(e <= rel) {
		t.Errorf("%s: relative error %g > %g", what, e, rel)
	}
	if d := maxAbsDiff(got, want); !(d <= abs*scale) {
		t.Errorf("%s: max abs difference %g > %g", what, d, abs*scale)
	}
}

// TestConvImplicitMatchesReferences checks the three implicit kernels
// (forward with and without bias, input gradient, each form of the
// weight gradient) against the naive float64 loops and against the
// im2col path, in float64 and float32, on random and edge shapes; on
// CPUs with AVX-512, also with the AVX2 kernels (float32 A packed).
func TestConvImplicitMatchesReferences(t *testing.T) {
	kernels := []bool{haveAVX512}
	if haveAVX512 {
		kernels = append(kernels, false)
	}
	for _, avx := range kernels {
		t.Run(fmt.Sprintf("avx512=%v", avx), func(t *testing.T) {
			haveAVX512 = avx
			defer func() { haveAVX512 = kernels[0] }()
			testConvImplicitMatchesReferences(t)
		})
	}
}

func testConvImplicitMatchesReferences(t *testing.T) {
	var ranForm [3]bool
	for _, tc := range implicitCases() {
		g, err := newConvGeom(tensor.Shape{tc.n, tc.c, tc.h, tc.w}, tensor.Shape{tc.o, tc.c, 3, 3}, 1, 1)
		require.NoError(t, err)
		require.True(t, g.implicit())
		rng := rand.New(rand.NewPCG(uint64(tc.c), uint64(tc.o*100+tc.h*10+tc.w)))
		x, w := randSlice(rng, tc.n*tc.c*tc.h*tc.w), randSlice(rng, tc.o*tc.c*9)
		gy, bias := randSlice(rng, tc.n*tc.o*tc.h*tc.w), randSlice(rng, tc.o)
		yRef := convFwdRef(x, w, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1)
		yBias := append([]float64{}, yRef...)
		for i := range yBias {
			yBias[i] += bias[(i/(tc.h*tc.w))%tc.o]
		}
		dxRef := convBwdXRef(gy, w, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1)
		dwRef := convWeightGradRef(x, gy, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1)
		name := fmt.Sprintf("%+v", tc)

		// float64: against the loops and the im2col path.
		var s, si any
		y, yi := make([]float64, len(yRef)), make([]float64, len(yRef))
		convFwdImplicit(&g, &s, x, w, nil, y)
		convFwd(&g, &si, joinShare(nil), true, x, w, nil, yi)
		checkClose(t, y, yRef, false, name+" fwd")
		checkClose(t, y, yi, false, name+" fwd vs im2col")
		convFwdImplicit(&g, &s, x, w, bias, y)
		checkClose(t, y, yBias, false, name+" fwd+bias")
		dx, dxi := make([]float64, len(dxRef)), make([]float64, len(dxRef))
		convBwdXImplicit(&g, &s, gy, w, dx)
		convBwdX(&g, &si, gy, w, dxi)
		checkClose(t, dx, dxRef, false, name+" bwdX")
		checkClose(t, dx, dxi, false, name+" bwdX vs im2col")
		dwi := make([]float64, len(dwRef))
		convBwdWPath(&g, &si, &colShare{}, x, gy, dwi, bwdWPlain)
		for _, form := range []int{bwdWPlain, bwdWTrans} {
			dw := make([]float64, len(dwRef))
			convBwdWImplicit(&g, &s, x, gy, dw, form)
			checkClose(t, dw, dwRef, false, fmt.Sprintf("%s bwdW form %d", name, form))
			checkClose(t, dw, dwi, false, fmt.Sprintf("%s bwdW form %d vs im2col", name, form))
		}

		checkImplicitFloat32(t, &g, x, w, gy, bias, implicitRefs{yRef, yBias, dxRef, dwRef}, name, &ranForm)
	}
	if haveAVX512 && !ranForm[bwdWDot] {
		t.Error("no case took the dot form")
	}
}

// implicitRefs are a convolution's float64 reference results: the
// output without and with bias, the input and the weight gradient.
type implicitRefs struct{ y, yBias, dx, dw []float64 }

// checkImplicitFloat32 runs g's implicit kernels in float32 against ref:
// the forward without and with bias, the input gradient (at stride 1 the
// implicit kernel whatever the width, else implicitBwdXOrCols) and every
// weight-gradient form the sizes allow, marking in ranForm the forms run.
func checkImplicitFloat32(t *testing.T, g *convGeom, x, w, gy, bias []float64, ref implicitRefs, name string, ranForm *[3]bool) {
	t.Helper()
	x32, w32, gy32, b32 := to32(x), to32(w), to32(gy), to32(bias)
	var s32 any
	y32 := make([]float32, len(ref.y))
	convFwdImplicit(g, &s32, x32, w32, nil, y32)
	checkClose(t, from32(y32), ref.y, true, name+" fwd float32")
	convFwdImplicit(g, &s32, x32, w32, b32, y32)
	checkClose(t, from32(y32), ref.yBias, true, name+" fwd+bias float32")
	dx32 := make([]float32, len(ref.dx))
	if g.s == 1 {
		convBwdXImplicit(g, &s32, gy32, w32, dx32)
	} else {
		implicitBwdXOrCols(g, &s32, gy32, w32, dx32)
	}
	checkClose(t, from32(dx32), ref.dx, true, name+" bwdX float32")
	_, _, l := g.padDims()
	for _, form := range []int{bwdWPlain, bwdWTrans, bwdWDot} {
		if form == bwdWDot && !canDot(g.o, dotChannels(g.c), l) {
			continue
		}
		ranForm[form] = true
		dw32 := make([]float32, len(ref.dw))
		convBwdWImplicit(g, &s32, x32, gy32, dw32, form)
		checkClose(t, from32(dw32), ref.dw, true, fmt.Sprintf("%s bwdW form %d float32", name, form))
	}
}

// TestConvImplicitKeepsNoColumns builds a 3×3/1/1 convolution's gradient
// and H·v graph: no op of it may hold a column share (the implicit path
// reads x itself), while an unpadded convolution's family still shares one.
func TestConvImplicitKeepsNoColumns(t *testing.T) {
	for _, tc := range []struct {
		s, p    int
		implies bool
	}{{1, 1, true}, {1, 0, false}} {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, 6, 6), gorgonia.WithName("x"), gorgonia.WithInit(gorgonia.GlorotN(1)))
		w := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(4, 3, 3, 3), gorgonia.WithName("w"), gorgonia.WithInit(gorgonia.GlorotN(1)))
		y, err := Conv2d(x, w, tc.s, tc.p)
		require.NoError(t, err)
		seed := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(y.Shape()...), gorgonia.WithName("g"), gorgonia.WithInit(gorgonia.GlorotN(1)))
		grads, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{seed}, []*gorgonia.Node{w, x})
		require.NoError(t, err)
		v := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(4, 3, 3, 3), gorgonia.WithName("v"), gorgonia.WithInit(gorgonia.GlorotN(1)))
		u := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(2, 3, 6, 6), gorgonia.WithName("u"), gorgonia.WithInit(gorgonia.GlorotN(1)))
		_, err = Backprop(grads, []*gorgonia.Node{v, u}, []*gorgonia.Node{x, w, seed})
		require.NoError(t, err)
		convs, shared := 0, 0
		for _, n := range g.AllNodes() {
			if op, ok := n.Op().(*convOp); ok {
				convs++
				if op.share != nil {
					shared++
				}
			}
		}
		require.Greater(t, convs, 2, "stride %d", tc.s)
		if tc.implies {
			require.Zero(t, shared, "implicit convs share no columns")
		} else {
			require.NotZero(t, shared, "im2col convs share their columns")
		}
	}
}

// TestConvImplicitAllocatesNothing: after a first run, the implicit
// kernels allocate no buffers (at most what parallelFor's goroutines
// cost, the same as the im2col path's).
func TestConvImplicitAllocatesNothing(t *testing.T) {
	g, err := newConvGeom(tensor.Shape{4, 8, 9, 7}, tensor.Shape{8, 8, 3, 3}, 1, 1)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(5, 6))
	x, w, gy := to32(randSlice(rng, 4*8*9*7)), to32(randSlice(rng, 8*8*9)), to32(randSlice(rng, 4*8*9*7))
	y, dx, dw := make([]float32, len(gy)), make([]float32, len(x)), make([]float32, len(w))
	var s, si any
	share := joinShare(joinShare(nil))
	imp := testing.AllocsPerRun(5, func() {
		convFwdImplicit(&g, &s, x, w, nil, y)
		convBwdXImplicit(&g, &s, gy, w, dx)
		convBwdWImplicit(&g, &s, x, gy, dw, implicitBwdWForm[float32](&g))
	})
	old := testing.AllocsPerRun(5, func() {
		convFwd(&g, &si, share, true, x, w, nil, y)
		convBwdX(&g, &si, gy, w, dx)
		convBwdW(&g, &si, share, x, gy, dw)
	})
	t.Logf("allocations per run: implicit %v, im2col %v", imp, old)
	require.LessOrEqual(t, imp, old)
	require.LessOrEqual(t, imp, float64(6), "two per kernel call at most, whatever the sizes")
}

// TestPadPlanesWritesEveryElement: padPlanes and widenRows overwrite a
// buffer full of NaNs completely (border, slack and extra columns zero),
// so a worker's buffer never needs clearing, whatever it held before.
func TestPadPlanesWritesEveryElement(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {2, 3, 4}, {3, 5, 2}} {
		ch, h, w := sz[0], sz[1], sz[2]
		x := make([]float64, ch*h*w)
		for i := range x {
			x[i] = float64(i + 1)
		}
		wp, pl := w+2, (h+2)*(w+2)
		xp := make([]float64, ch*pl+padSlack)
		for i := range xp {
			xp[i] = math.NaN()
		}
		padPlanes(x, xp, ch, h, w)
		for i, v := range xp {
			c, r, col := i/pl, (i%pl)/wp, i%wp
			want := 0.0
			if c < ch && r >= 1 && r <= h && col >= 1 && col <= w {
				want = x[(c*h+r-1)*w+col-1]
			}
			require.Equal(t, want, v, "%v: element %d", sz, i)
		}
		gw := make([]float64, ch*h*wp)
		gt := make([]float64, ch*h*wp)
		for i := range gw {
			gw[i], gt[i] = math.NaN(), math.NaN()
		}
		widenRows(x, gw, ch*h, w, wp)
		widenRowsT(x, gt, ch, h, w, wp)
		for c := 0; c < ch; c++ {
			for i := 0; i < h; i++ {
				for j := 0; j < wp; j++ {
					want := 0.0
					if j < w {
						want = x[(c*h+i)*w+j]
					}
					require.Equal(t, want, gw[(c*h+i)*wp+j], "%v widen", sz)
					require.Equal(t, want, gt[(i*wp+j)*ch+c], "%v widenT", sz)
				}
			}
		}
	}
}

// TestConvCostOfImplicitConvs: the memory estimate counts no column cache
// for the convolutions of the implicit path (kernel 3, stride 1, padding
// 1, and the stride-2 phase-plane geometries) and still counts one for the
// others; and implicitScratch bounds
// what the implicit kernels really hold per worker (every kind and
// weight-gradient form run on one scratch, so each op's own is smaller).
func TestConvCostOfImplicitConvs(t *testing.T) {
	cols, scratch := convCost([]int{2, 6, 6}, []int{3, 6, 6}, 3, 1, 1)
	assert.Zero(t, cols)
	assert.Equal(t, implicitScratch([]int{2, 6, 6}, []int{3, 6, 6}, 3, 1, 1), scratch)
	cols, scratch = convCost([]int{2, 6, 6}, []int{3, 3, 3}, 3, 2, 1)
	assert.Zero(t, cols, "stride 2, padding 1: phase planes")
	assert.Equal(t, implicitScratch([]int{2, 6, 6}, []int{3, 3, 3}, 3, 2, 1), scratch)
	cols, _ = convCost([]int{2, 6, 6}, []int{3, 3, 3}, 3, 3, 1)
	assert.Equal(t, int64(72+18*9), cols, "stride 3: input copy and columns")
	cols, _ = convCost([]int{2, 6, 6}, []int{3, 4, 4}, 3, 1, 0)
	assert.Equal(t, int64(72+18*16), cols, "padding 0: input copy and columns")

	type geomCase struct {
		implicitCase
		k, s, p int
	}
	var cases []geomCase
	for _, tc := range []implicitCase{{3, 16, 16, 32, 32}, {2, 64, 64, 8, 8}, {2, 3, 17, 9, 5}, {2, 40, 8, 7, 7}, {2, 8, 40, 12, 12}} {
		cases = append(cases, geomCase{tc, 3, 1, 1})
	}
	for _, tc := range []implicitCase{{2, 16, 32, 32, 32}, {2, 32, 64, 16, 16}, {2, 3, 17, 9, 5}, {2, 40, 8, 7, 7}} {
		cases = append(cases, geomCase{tc, 3, 2, 1}, geomCase{tc, 1, 2, 0})
	}
	for _, gc := range cases {
		tc := gc.implicitCase
		g, err := newConvGeom(tensor.Shape{tc.n, tc.c, tc.h, tc.w}, tensor.Shape{tc.o, tc.c, gc.k, gc.k}, gc.s, gc.p)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(8, 9))
		x, w, gy := to32(randSlice(rng, tc.n*tc.c*tc.h*tc.w)), to32(randSlice(rng, tc.o*tc.c*gc.k*gc.k)), to32(randSlice(rng, tc.n*tc.o*g.pix))
		y, dx, dw := make([]float32, len(gy)), make([]float32, len(x)), make([]float32, len(w))
		bound := implicitScratch([]int{tc.c, tc.h, tc.w}, []int{tc.o, g.oh, g.ow}, gc.k, gc.s, gc.p)
		// Each op computes one kind, on its own scratch; the weight
		// gradient in any of its forms.
		kinds := []func(s *any){
			func(s *any) { implicitFwdOrCols(&g, s, x, w, nil, y) },
			func(s *any) { implicitBwdXOrCols(&g, s, gy, w, dx) },
		}
		_, _, l := g.padDims()
		for _, form := range []int{bwdWPlain, bwdWTrans, bwdWDot} {
			if form != bwdWDot || canDot(g.o, dotChannels(g.c), l) {
				kinds = append(kinds, func(s *any) { convBwdWImplicit(&g, s, x, gy, dw, form) })
			}
		}
		most := 0
		for k, run := range kinds {
			var s any
			run(&s)
			// Per worker (the taps, one per op, counted with each).
			sc := s.(*convScratch[float32])
			for i := range sc.xp {
				held := cap(sc.taps) + cap(sc.col[i]) + cap(sc.xp[i]) + cap(sc.yp[i]) + cap(sc.acc[i]) + cap(sc.gb[i].a32) + cap(sc.gb[i].b32)
				most = max(most, held)
				assert.LessOrEqual(t, int64(held), bound, "%+v kind %d worker %d", gc, k, i)
			}
		}
		t.Logf("%+v: most held by one op's worker %d, bound %d", gc, most, bound)
	}
}

// TestConvImplicitOpsMatchDefinition runs Conv2dBias and its gradients
// through a graph for 3×3/1/1 geometries on both sides of implicitMinW
// (forward and input gradient by per-worker im2col below it, implicit
// GEMM above; the weight gradient implicit on both) and compares them
// with the defining loops, in both dtypes.
func TestConvImplicitOpsMatchDefinition(t *testing.T) {
	for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
		for _, tc := range []implicitCase{{2, 3, 5, 4, implicitMinW - 1}, {2, 5, 3, 5, implicitMinW}, {3, 4, 6, 7, 16}} {
			gm, err := newConvGeom(tensor.Shape{tc.n, tc.c, tc.h, tc.w}, tensor.Shape{tc.o, tc.c, 3, 3}, 1, 1)
			require.NoError(t, err)
			require.Equal(t, tc.w >= implicitMinW, gm.implicitFwd())
			rng := rand.New(rand.NewPCG(uint64(tc.w), 11))
			g := gorgonia.NewGraph()
			mk := func(name string, shape ...int) (*gorgonia.Node, []float64) {
				v := randSlice(rng, tensor.Shape(shape).TotalSize())
				tt := tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
				setData(tt, v)
				return gorgonia.NewTensor(g, dt, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name), gorgonia.WithValue(tt)), v
			}
			xn, xv := mk("x", tc.n, tc.c, tc.h, tc.w)
			wn, wv := mk("w", tc.o, tc.c, 3, 3)
			bn, bv := mk("b", tc.o)
			gn, gv := mk("g", tc.n, tc.o, tc.h, tc.w)
			y, err := Conv2dBias(xn, wn, bn, 1, 1)
			require.NoError(t, err)
			gs, err := Backprop([]*gorgonia.Node{y}, []*gorgonia.Node{gn}, []*gorgonia.Node{xn, wn})
			require.NoError(t, err)
			m := gorgonia.NewTapeMachine(g)
			require.NoError(t, m.RunAll())
			m.Close()
			want := convFwdRef(xv, wv, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1)
			for i := range want {
				want[i] += bv[(i/(tc.h*tc.w))%tc.o]
			}
			f32 := dt == tensor.Float32
			name := fmt.Sprintf("%v %+v", dt, tc)
			checkClose(t, getData(y.Value().(*tensor.Dense)), want, f32, name+" y")
			checkClose(t, getData(gs[0].Value().(*tensor.Dense)), convBwdXRef(gv, wv, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1), f32, name+" dx")
			checkClose(t, getData(gs[1].Value().(*tensor.Dense)), convWeightGradRef(xv, gv, tc.n, tc.c, tc.h, tc.w, tc.o, 3, 1, 1), f32, name+" dw")
		}
	}
}

// TestConvStridedImplicitMatchesReferences checks the stride-2 implicit
// geometries (kernel 3 padding 1, kernel 1 padding 0: the forward and
// weight gradient through phase planes, the input gradient by im2col)
// against the naive float64 loops, in float64 and float32, with the
// AVX-512 kernels and the AVX2 ones: even and odd planes (odd ones leave
// a phase a row or column short), the compact output width (OW = 16) and
// random sizes; the weight gradient in every form its sizes allow.
func TestConvStridedImplicitMatchesReferences(t *testing.T) {
	kernels := []bool{haveAVX512}
	if haveAVX512 {
		kernels = append(kernels, false)
	}
	type geom struct{ k, p int }
	rng := rand.New(rand.NewPCG(31, 4))
	cases := []implicitCase{{1, 1, 1, 1, 1}, {2, 3, 5, 7, 9}, {2, 16, 32, 32, 32}, {1, 4, 8, 31, 33}, {2, 8, 16, 16, 16}, {1, 6, 12, 15, 16}}
	for range 12 {
		cases = append(cases, implicitCase{1 + rng.IntN(3), 1 + rng.IntN(17), 1 + rng.IntN(17), 1 + rng.IntN(19), 1 + rng.IntN(19)})
	}
	var ranForm [3]bool
	for _, avx := range kernels {
		haveAVX512 = avx
		for _, gm := range []geom{{3, 1}, {1, 0}} {
			for _, tc := range cases {
				g, err := newConvGeom(tensor.Shape{tc.n, tc.c, tc.h, tc.w}, tensor.Shape{tc.o, tc.c, gm.k, gm.k}, 2, gm.p)
				require.NoError(t, err)
				require.True(t, g.implicit())
				name := fmt.Sprintf("avx512=%v k%d p%d %+v", avx, gm.k, gm.p, tc)
				rr := rand.New(rand.NewPCG(uint64(tc.c), uint64(tc.o*100+tc.h*10+tc.w)))
				x, w := randSlice(rr, tc.n*tc.c*tc.h*tc.w), randSlice(rr, tc.o*tc.c*gm.k*gm.k)
				gy, bias := randSlice(rr, tc.n*tc.o*g.pix), randSlice(rr, tc.o)
				yRef := convFwdRef(x, w, tc.n, tc.c, tc.h, tc.w, tc.o, gm.k, 2, gm.p)
				yBias := append([]float64{}, yRef...)
				for i := range yBias {
					yBias[i] += bias[(i/g.pix)%tc.o]
				}
				dxRef := convBwdXRef(gy, w, tc.n, tc.c, tc.h, tc.w, tc.o, gm.k, 2, gm.p)
				dwRef := convWeightGradRef(x, gy, tc.n, tc.c, tc.h, tc.w, tc.o, gm.k, 2, gm.p)

				var s any
				y, dx := make([]float64, len(yRef)), make([]float64, len(dxRef))
				convFwdImplicit(&g, &s, x, w, nil, y)
				checkClose(t, y, yRef, false, name+" fwd")
				convFwdImplicit(&g, &s, x, w, bias, y)
				checkClose(t, y, yBias, false, name+" fwd+bias")
				for i := range dx { // the input gradient writes every element
					dx[i] = math.NaN()
				}
				implicitBwdXOrCols(&g, &s, gy, w, dx)
				checkClose(t, dx, dxRef, false, name+" bwdX")
				for _, form := range []int{bwdWPlain, bwdWTrans} {
					dw := make([]float64, len(dwRef))
					convBwdWImplicit(&g, &s, x, gy, dw, form)
					checkClose(t, dw, dwRef, false, fmt.Sprintf("%s bwdW form %d", name, form))
				}

				checkImplicitFloat32(t, &g, x, w, gy, bias, implicitRefs{yRef, yBias, dxRef, dwRef}, name, &ranForm)
			}
		}
	}
	haveAVX512 = kernels[0]
	require.True(t, ranForm[bwdWPlain] && ranForm[bwdWTrans])
}

// TestPhasePlanesWritesEveryElement: phasePlanes overwrites a buffer full
// of NaNs completely, each phase plane holding xpad[S·u + a, S·v + b] (0
// outside x) and the slack zero, at stride 2 for kernels 3 (padding 1)
// and 1 (padding 0), on even and odd planes.
func TestPhasePlanesWritesEveryElement(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {2, 4, 6}, {3, 5, 7}} {
		for _, kp := range [][2]int{{3, 1}, {1, 0}} {
			ch, h, w := sz[0], sz[1], sz[2]
			g, err := newConvGeom(tensor.Shape{1, ch, h, w}, tensor.Shape{1, ch, kp[0], kp[0]}, 2, kp[1])
			require.NoError(t, err)
			x := make([]float64, ch*h*w)
			for i := range x {
				x[i] = float64(i + 1)
			}
			wq, pl, _ := g.padDims()
			f := min(g.s, g.k)
			hq := pl / (f * f * wq)
			xp := make([]float64, ch*pl+padSlack)
			for i := range xp {
				xp[i] = math.NaN()
			}
			phasePlanes(&g, x, xp)
			for i, v := range xp {
				want := 0.0
				if c := i / pl; c < ch {
					ph, r := (i%pl)/(hq*wq), i%(hq*wq)
					iy, ix := 2*(r/wq)+ph/f-g.p, 2*(r%wq)+ph%f-g.p
					if iy >= 0 && iy < h && ix >= 0 && ix < w {
						want = x[(c*h+iy)*w+ix]
					}
				}
				require.Equal(t, want, v, "%v k%d: element %d", sz, kp[0], i)
			}
		}
	}
}

// TestWidenRowsTBlocks checks widenRowsT's float32 8×8-block path (channels
// and widths multiples of 8) and widenRows' row copy (padRows32, two extra
// columns) element by element against the definition, into buffers full of
// NaNs, with one and several blocks each way and one or two extra columns.
func TestWidenRowsTBlocks(t *testing.T) {
	for _, sz := range [][4]int{{8, 1, 8, 9}, {16, 3, 16, 18}, {24, 2, 24, 26}, {8, 4, 32, 34}} {
		o, h, w, wp := sz[0], sz[1], sz[2], sz[3]
		src := make([]float32, o*h*w)
		for i := range src {
			src[i] = float32(i + 1)
		}
		dst := make([]float32, h*wp*o)
		for i := range dst {
			dst[i] = float32(math.NaN())
		}
		widenRowsT(src, dst, o, h, w, wp)
		wide := make([]float32, o*h*wp)
		for i := range wide {
			wide[i] = float32(math.NaN())
		}
		widenRows(src, wide, o*h, w, wp)
		for c := 0; c < o; c++ {
			for i := 0; i < h; i++ {
				for j := 0; j < wp; j++ {
					var want float32
					if j < w {
						want = src[(c*h+i)*w+j]
					}
					if got := dst[(i*wp+j)*o+c]; got != want {
						t.Fatalf("%v: dst for c %d, i %d, j %d = %v, want %v", sz, c, i, j, got, want)
					}
					if got := wide[(c*h+i)*wp+j]; got != want {
						t.Fatalf("%v: widenRows for c %d, i %d, j %d = %v, want %v", sz, c, i, j, got, want)
					}
				}
			}
		}
	}
}

// TestPadPlanesFloat32Rows checks padPlanes' float32 row path (widths a
// multiple of 8: the AVX2 row copy) into buffers full of NaNs, element by
// element: interior from x, border and slack zero.
func TestPadPlanesFloat32Rows(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 8}, {2, 3, 16}, {3, 5, 8}, {2, 2, 32}} {
		ch, h, w := sz[0], sz[1], sz[2]
		x := make([]float32, ch*h*w)
		for i := range x {
			x[i] = float32(i + 1)
		}
		wp, pl := w+2, (h+2)*(w+2)
		xp := make([]float32, ch*pl+padSlack)
		for i := range xp {
			xp[i] = float32(math.NaN())
		}
		padPlanes(x, xp, ch, h, w)
		for i, v := range xp {
			c, r, col := i/pl, (i%pl)/wp, i%wp
			var want float32
			if c < ch && r >= 1 && r <= h && col >= 1 && col <= w {
				want = x[(c*h+r-1)*w+col-1]
			}
			if v != want {
				t.Fatalf("%v: element %d (channel %d, row %d, column %d) = %v, want %v", sz, i, c, r, col, v, want)
			}
		}
	}
}

// TestPhasePlanesFloat32Rows checks phasePlanes' float32 path for kernel
// 3, stride 2, padding 1 on rows a multiple of 16 wide (deinterleave32),
// even and odd heights, into NaN-filled buffers, against the definition.
func TestPhasePlanesFloat32Rows(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 16}, {2, 4, 16}, {1, 5, 32}, {3, 6, 48}} {
		ch, h, w := sz[0], sz[1], sz[2]
		g, err := newConvGeom(tensor.Shape{1, ch, h, w}, tensor.Shape{1, ch, 3, 3}, 2, 1)
		require.NoError(t, err)
		x := make([]float32, ch*h*w)
		for i := range x {
			x[i] = float32(i + 1)
		}
		wq, pl, _ := g.padDims()
		hq := pl / (4 * wq)
		xp := make([]float32, ch*pl+padSlack)
		for i := range xp {
			xp[i] = float32(math.NaN())
		}
		phasePlanes(&g, x, xp)
		for i, v := range xp {
			var want float32
			if c := i / pl; c < ch {
				ph, r := (i%pl)/(hq*wq), i%(hq*wq)
				iy, ix := 2*(r/wq)+ph/2-1, 2*(r%wq)+ph%2-1
				if iy >= 0 && iy < h && ix >= 0 && ix < w {
					want = x[(c*h+iy)*w+ix]
				}
			}
			if v != want {
				t.Fatalf("%v: element %d = %v, want %v", sz, i, v, want)
			}
		}
	}
}
