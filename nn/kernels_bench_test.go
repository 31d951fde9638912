package nn

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// randKernelData is conv-output-like data: random signs, so branches on
// comparisons are unpredictable.
func randKernelData(n int) []float32 {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// BenchmarkPoolFwd times the 2×2/2 max-pool kernel on the CNN's first pool
// input (64×32×32×32 float32), against a copy of the same data for scale.
func BenchmarkPoolFwd(b *testing.B) {
	st := &poolState{n: 64, c: 32, h: 32, w: 32, k: 2, s: 2, oh: 16, ow: 16}
	st.idx = make([]int32, 64*32*16*16)
	x := randKernelData(64 * 32 * 32 * 32)
	y := make([]float32, len(st.idx))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		poolFwd(st, x, y)
	}
}

func BenchmarkMaskMul(b *testing.B) {
	x := randKernelData(64 * 32 * 32 * 32)
	o := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		maskMul([][]float32{x, x}, o)
	}
}

func BenchmarkCopy(b *testing.B) {
	x := make([]float32, 64*32*32*32)
	o := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		copy(o, x)
	}
}

// BenchmarkPoolScatter times the fused ReLU max-pool backward (tiled 2×2).
func BenchmarkPoolScatter(b *testing.B) {
	st := &poolState{n: 64, c: 32, h: 32, w: 32, k: 2, s: 2, oh: 16, ow: 16, relu: true}
	st.idx = make([]int32, 64*32*16*16)
	x := randKernelData(64 * 32 * 32 * 32)
	y := make([]float32, len(st.idx))
	poolFwd(st, x, y)
	dx := make([]float32, len(x))
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		poolScatter(st, y, dx)
	}
}

// BenchmarkConvBwdW times the weight gradient of ResNet-20's 3×3 convs at
// batch 128 (one per stage), as gy·colsᵀ (packing the columns) and as
// cols·gyᵀ (transposing gy).
func BenchmarkConvBwdW(b *testing.B) {
	for _, st := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}} {
		g, err := newConvGeom([]int{128, st.c, st.hw, st.hw}, []int{st.c, st.c, 3, 3}, 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		x := randKernelData(g.n * g.c * g.plen)
		gy := randKernelData(g.n * g.o * g.pix)
		dw := make([]float32, g.o*g.ckk)
		for form, name := range []string{"plain", "trans", "dot"} {
			if form == bwdWDot && !canDot(g.o, g.ckk, g.pix) {
				continue
			}
			b.Run(fmt.Sprintf("c=%d/form=%s", st.c, name), func(b *testing.B) {
				var s any
				share := &colShare{}
				for i := 0; i < b.N; i++ {
					convBwdWPath(&g, &s, share, x, gy, dw, form)
				}
			})
		}
	}
}

// BenchmarkIm2colSame times the columns of one ResNet-20 first-stage
// sample (16×32×32, 3×3, padding 1).
func BenchmarkIm2colSame(b *testing.B) {
	g, err := newConvGeom([]int{1, 16, 32, 32}, []int{16, 16, 3, 3}, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	x := randKernelData(g.c * g.plen)
	col := make([]float32, g.ckk*g.pix)
	for i := 0; i < b.N; i++ {
		im2colSame(&g, x, col)
	}
}

// BenchmarkCol2imSame times the adjoint of BenchmarkIm2colSame.
func BenchmarkCol2imSame(b *testing.B) {
	g, err := newConvGeom([]int{1, 16, 32, 32}, []int{16, 16, 3, 3}, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	col := randKernelData(g.ckk * g.pix)
	x := make([]float32, g.c*g.plen)
	for i := 0; i < b.N; i++ {
		col2imSame(&g, col, x)
	}
}

// BenchmarkConv3x3 times the forward, input-gradient and weight-gradient
// kernels of ResNet-20's 3×3 convs (one per stage, O = C) at batch 128,
// float32, on both paths as a training graph runs them: path=im2col (the
// forward writing every sample's columns into the family's cache, the
// weight gradient reading them from it) and path=implicit
// (conv_implicit.go's kernels, whatever implicitMinW says), plus
// fwd/path=im2col-eval, the forward of an evaluation graph (a family of
// one: columns in a per-worker buffer), which is also what a training
// graph's forward takes below implicitMinW. implicit against im2col-eval
// (forward) and im2col (input gradient) is the comparison that sets
// implicitMinW. Compare with
// `go test ./nn -run '^$' -bench Conv3x3 -count 5 | benchstat`.
func BenchmarkConv3x3(b *testing.B) {
	for _, st := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}} {
		g, err := newConvGeom([]int{128, st.c, st.hw, st.hw}, []int{st.c, st.c, 3, 3}, 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		x := randKernelData(g.n * g.c * g.plen)
		w := randKernelData(g.o * g.ckk)
		gy := randKernelData(g.n * g.o * g.pix)
		y, dx, dw := make([]float32, len(gy)), make([]float32, len(x)), make([]float32, len(w))
		b.Run(fmt.Sprintf("c=%d/fwd/path=im2col-eval", st.c), func(b *testing.B) {
			var s any
			for i := 0; i < b.N; i++ {
				convFwd(&g, &s, joinShare(nil), true, x, w, nil, y)
			}
		})
		for _, path := range []string{"im2col", "implicit"} {
			imp := path == "implicit"
			b.Run(fmt.Sprintf("c=%d/fwd/path=%s", st.c, path), func(b *testing.B) {
				var s any
				family := joinShare(joinShare(nil))
				for i := 0; i < b.N; i++ {
					if imp {
						convFwdImplicit(&g, &s, x, w, nil, y)
					} else {
						convFwd(&g, &s, family, true, x, w, nil, y)
					}
				}
			})
			b.Run(fmt.Sprintf("c=%d/bwdX/path=%s", st.c, path), func(b *testing.B) {
				var s any
				for i := 0; i < b.N; i++ {
					if imp {
						convBwdXImplicit(&g, &s, gy, w, dx)
					} else {
						convBwdX(&g, &s, gy, w, dx)
					}
				}
			})
			b.Run(fmt.Sprintf("c=%d/bwdW/path=%s", st.c, path), func(b *testing.B) {
				var s any
				share := &colShare{}
				if !imp { // the columns a training forward pass caches
					columns[float32](share, &g, x)
				}
				for i := 0; i < b.N; i++ {
					if imp {
						convBwdWImplicit(&g, &s, x, gy, dw, implicitBwdWForm[float32](&g))
					} else {
						convBwdW(&g, &s, share, x, gy, dw)
					}
				}
			})
		}
	}
}

// withEW runs f with the AVX2 elementwise kernels on (asm) or off (the Go
// loops), as a sub-benchmark of each name, and restores haveEW.
func withEW(b *testing.B, f func(b *testing.B)) {
	for _, asm := range []bool{true, false} {
		if asm && !haveEW {
			continue
		}
		b.Run(map[bool]string{true: "asm", false: "go"}[asm], func(b *testing.B) {
			old := haveEW
			haveEW = asm
			defer func() { haveEW = old }()
			f(b)
		})
	}
}

// BenchmarkOperandCopies times the implicit convolutions' operand copies on
// ResNet-20's planes, with the AVX2 kernels and with the Go loops (run it
// with -cpu 1): padPlanes of a batch of 128 samples per stage,
// widenRowsT and widenRows of one sample, and phasePlanes of one
// 16×32×32 sample for the stride-2 3×3 convolution.
func BenchmarkOperandCopies(b *testing.B) {
	for _, st := range []struct{ c, hw int }{{16, 32}, {32, 16}, {64, 8}} {
		const n = 128
		pl := st.c * st.hw * st.hw
		x := randKernelData(n * pl)
		xp := make([]float32, st.c*(st.hw+2)*(st.hw+2)+padSlack)
		b.Run(fmt.Sprintf("padPlanes/c=%d", st.c), func(b *testing.B) {
			withEW(b, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					for s := 0; s < n; s++ {
						padPlanes(x[s*pl:(s+1)*pl], xp, st.c, st.hw, st.hw)
					}
				}
			})
		})
		wide := make([]float32, st.c*st.hw*(st.hw+2))
		b.Run(fmt.Sprintf("widenRowsT/c=%d", st.c), func(b *testing.B) {
			withEW(b, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					widenRowsT(x[:pl], wide, st.c, st.hw, st.hw, st.hw+2)
				}
			})
		})
		b.Run(fmt.Sprintf("widenRows/c=%d", st.c), func(b *testing.B) {
			withEW(b, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					widenRows(x[:pl], wide, st.c*st.hw, st.hw, st.hw+2)
				}
			})
		})
	}
	g, err := newConvGeom([]int{1, 16, 32, 32}, []int{32, 16, 3, 3}, 2, 1)
	if err != nil {
		b.Fatal(err)
	}
	x := randKernelData(g.c * g.plen)
	_, pl, _ := g.padDims()
	xp := make([]float32, g.c*pl+padSlack)
	b.Run("phasePlanes/c=16", func(b *testing.B) {
		withEW(b, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				phasePlanes(&g, x, xp)
			}
		})
	})
}
