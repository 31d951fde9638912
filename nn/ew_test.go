package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ewInputs returns n float32s mixing ordinary values with the special ones
// (±0, ±Inf, NaNs of both signs, subnormals) the kernels must treat as the
// scalar loops do.
func ewInputs(rng *rand.Rand, n int) []float32 {
	special := []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0x7fc00001), math.Float32frombits(0xffc00001), 1e-40, -1e-40, math.MaxFloat32, -math.MaxFloat32}
	x := make([]float32, n)
	for i := range x {
		if rng.IntN(8) == 0 {
			x[i] = special[rng.IntN(len(special))]
			continue
		}
		x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(9)-4)))
	}
	return x
}

// sameBits32 fails unless got and want hold the same bits, or (where nan is
// set: arithmetic, where the hardware picks which NaN operand's payload and
// sign survive by operand order) both NaN.
func sameBits32(t *testing.T, name string, n int, got, want []float32, nan bool) {
	t.Helper()
	for i := range want {
		if nan && got[i] != got[i] && want[i] != want[i] {
			continue
		}
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%s, n = %d: element %d is %v (%#x), scalar loop %v (%#x)", name, n, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
		}
	}
}

// TestElementwiseKernelsMatchScalar checks the vector paths of vecScale,
// vecAddScalar, vecAdd, vecMul and maskMul32 bitwise against scalar loops
// (NaN results only as NaN)
// for every length up to 100 (all step and tail combinations), at an odd
// offset into the slices (unaligned), in place where the op allows.
func TestElementwiseKernelsMatchScalar(t *testing.T) {
	if !haveEW {
		t.Log("no AVX2 kernels here: the Go loops are checked against themselves")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 100; n++ {
		a, b := ewInputs(rng, n+1)[1:], ewInputs(rng, n+1)[1:]
		s := ewInputs(rng, 1)[0]
		got, want := make([]float32, n), make([]float32, n)

		vecScale(a, got, s)
		for i := range a {
			want[i] = a[i] * s
		}
		sameBits32(t, "vecScale", n, got, want, true)

		vecAddScalar(a, got, s)
		for i := range a {
			want[i] = a[i] + s
		}
		sameBits32(t, "vecAddScalar", n, got, want, true)

		vecAdd(a, b, got)
		for i := range a {
			want[i] = a[i] + b[i]
		}
		sameBits32(t, "vecAdd", n, got, want, true)

		vecMul(a, b, got)
		for i := range a {
			want[i] = a[i] * b[i]
		}
		sameBits32(t, "vecMul", n, got, want, true)

		maskMul32(a, b, got)
		for i, v := range a {
			want[i] = 0
			if int32(math.Float32bits(v)) > 0 {
				want[i] = b[i]
			}
		}
		sameBits32(t, "maskMul32", n, got, want, false)

		// In place: o = a + b into a copy of a.
		in := append([]float32(nil), a...)
		vecAdd(in, b, in)
		for i := range a {
			want[i] = a[i] + b[i]
		}
		sameBits32(t, "vecAdd in place", n, in, want, true)
	}
}

// TestSumDotF64 checks sumF64 and dotF64 on float32 data (the AVX-512
// kernels where they exist, every step/tail split up to 100 elements)
// against sums in a fixed order to float64 rounding, and that an Inf or NaN
// element reaches the result.
func TestSumDotF64(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for n := 0; n <= 100; n++ {
		a, b := make([]float32, n+1)[1:], make([]float32, n+1)[1:]
		var ws, wd, scale float64
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			ws += float64(a[i])
			wd += float64(a[i]) * float64(b[i])
			scale += math.Abs(float64(a[i])) * (1 + math.Abs(float64(b[i])))
		}
		if d := math.Abs(sumF64(a) - ws); d > 1e-14*scale {
			t.Fatalf("n = %d: sumF64 %v, sequential %v", n, sumF64(a), ws)
		}
		if d := math.Abs(dotF64(a, b) - wd); d > 1e-14*scale {
			t.Fatalf("n = %d: dotF64 %v, sequential %v", n, dotF64(a, b), wd)
		}
		if n > 0 {
			k := rng.IntN(n)
			a[k] = float32(math.Inf(1))
			if s := sumF64(a); !math.IsInf(s, 1) {
				t.Fatalf("n = %d: sumF64 with +Inf at %d = %v", n, k, s)
			}
			a[k] = float32(math.NaN())
			if s := dotF64(a, b); !math.IsNaN(s) {
				t.Fatalf("n = %d: dotF64 with NaN at %d = %v", n, k, s)
			}
		}
	}
}

// TestVecScaleAdd checks vecScaleAdd (the vector kernel where there is one)
// against a scale then an add, bitwise (NaN results only as NaN), for every
// length up to 100.
func TestVecScaleAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for n := 0; n <= 100; n++ {
		a := ewInputs(rng, n+1)[1:]
		sb := ewInputs(rng, 2)
		got, want := make([]float32, n), make([]float32, n)
		vecScaleAdd(a, got, sb[0], sb[1])
		for i := range a {
			want[i] = float32(a[i]*sb[0]) + sb[1] // rounded product: no FMA
		}
		sameBits32(t, "vecScaleAdd", n, got, want, true)
	}
}

// TestAddNBiasAndChanMulRows checks addNBias (biases in every position,
// two to four inputs) and chanMul against scalar loops, bitwise, on
// [outer, C] rows (inner 1, the row path) and on [outer, C, inner] blocks.
func TestAddNBiasAndChanMulRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 15))
	for _, inner := range []int{1, 3, 20} {
		const outer, c = 5, 37
		n := outer * c * inner
		full := func() []float32 { return ewInputs(rng, n) }
		vec := func() []float32 { return ewInputs(rng, c) }
		for _, bias := range [][]bool{{false, true}, {true, false}, {true, true, false}, {false, false, true, true}, {false, true, false}} {
			in := make([][]float32, len(bias))
			for k, b := range bias {
				in[k] = full()
				if b {
					in[k] = vec()
				}
			}
			got, want := make([]float32, n), make([]float32, n)
			addNBias(in, bias, got, outer, c, inner)
			for i := range want {
				ch := (i / inner) % c
				at := func(k int) float32 {
					if bias[k] {
						return in[k][ch]
					}
					return in[k][i]
				}
				v := at(0) + at(1)
				for k := 2; k < len(in); k++ {
					v += at(k)
				}
				want[i] = v
			}
			sameBits32(t, "addNBias", inner, got, want, true)
		}
		x, s := full(), vec()
		got, want := make([]float32, n), make([]float32, n)
		chanMul(x, s, got, outer, c, inner)
		for i := range want {
			want[i] = x[i] * s[(i/inner)%c]
		}
		sameBits32(t, "chanMul", inner, got, want, true)
	}
}

// TestFusedRowKernels checks the one-pass batch-norm row kernels bitwise
// against the passes they replace, for every length up to 100 (all vector
// step and tail splits) at an odd offset, float32 (the vector kernels where
// they exist) and float64 (the Go loops): affineRow against x − mu, a
// scale, an add and (with relu) maskRow; shiftedMoments against
// vecAddScalar then sumF64 and dotF64 of the stored row; sumDotF64 against
// maskRow (when masked) then sumF64 and dotF64. Special values (±0, ±Inf,
// NaNs of both signs) are among the inputs, so the masks' sign and NaN
// conventions are checked too; NaN results count only as NaN.
func TestFusedRowKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for n := 0; n <= 100; n++ {
		x, w, a := ewInputs(rng, n+1)[1:], ewInputs(rng, n+1)[1:], ewInputs(rng, n+1)[1:]
		k := ewInputs(rng, 3)
		checkFusedRows(t, n, x, w, a, k)
		checkFusedRows(t, n, widen(x), widen(w), widen(a), widen(k))
	}
}

func widen(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

func sameBits64(t *testing.T, what string, n int, got, want float64) {
	t.Helper()
	if got != got && want != want {
		return
	}
	if math.Float64bits(got) != math.Float64bits(want) {
		t.Fatalf("%s, n = %d: %v (%#x), the separate passes %v (%#x)", what, n, got, math.Float64bits(got), want, math.Float64bits(want))
	}
}

func checkFusedRows[T Float](t *testing.T, n int, x, w, a, k []T) {
	t.Helper()
	mu, s, b := k[0], k[1], k[2]
	got, want := make([]T, n), make([]T, n)
	for _, relu := range []bool{false, true} {
		affineRow(x, got, mu, s, b, relu)
		for i := range x {
			want[i] = T((x[i]-mu)*s) + b
		}
		for i := range got {
			// Which operand's NaN (and so which sign) an operation returns
			// is the hardware's choice, and the ReLU's sign test then keeps
			// a NaN or zeroes it: either is right for a NaN before the mask.
			if relu && want[i] != want[i] && (got[i] != got[i] || got[i] == 0) {
				continue
			}
			if relu {
				maskRow(want[i:i+1], want[i:i+1], want[i:i+1])
			}
			sameBits64(t, fmt.Sprintf("affineRow (relu %v) element %d", relu, i), n, float64(got[i]), float64(want[i]))
		}
	}

	vecAddScalar(x, want, -mu)
	sum, sq := shiftedMoments(x, -mu)
	sameBits64(t, "shiftedMoments Σd", n, sum, sumF64(want))
	sameBits64(t, "shiftedMoments Σd²", n, sq, dotF64(want, want))

	for _, masked := range []bool{false, true} {
		var am []T
		copy(want, w)
		if masked {
			am = a
			maskRow(a, w, want)
		}
		sw, swx := sumDotF64(w, x, am)
		sameBits64(t, fmt.Sprintf("sumDotF64 Σw' (masked %v)", masked), n, sw, sumF64(want))
		sameBits64(t, fmt.Sprintf("sumDotF64 Σw'·x (masked %v)", masked), n, swx, dotF64(want, x))
	}
}

// TestAddNTiles checks addN bitwise against the sum in input order, with
// two to five inputs, at lengths around and across its tile and the
// parallel split (so tiles end at a worker's range and mid-slice).
func TestAddNTiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	for _, n := range []int{1, addNTile - 1, addNTile, addNTile + 7, 3*addNTile + 5, minParallel + 3*addNTile + 1} {
		for k := 2; k <= 5; k++ {
			in := make([][]float32, k)
			for i := range in {
				in[i] = ewInputs(rng, n)
			}
			got, want := make([]float32, n), make([]float32, n)
			addN(in, got)
			for i := range want {
				v := in[0][i] + in[1][i]
				for _, x := range in[2:] {
					v += x[i]
				}
				want[i] = v
			}
			sameBits32(t, fmt.Sprintf("addN of %d", k), n, got, want, true)
		}
	}
}
