package nn

import "math"

// Float32 kernels of the GELU-tanh family. The generic unary path evaluates
// f⁽ʲ⁾ through a function value per element with math.Exp/math.Expm1 in
// float64; for float32 tensors that precision is spent on digits the result
// drops. These kernels evaluate f, f′ and f″ in float64 with one inlined
// exponential (expGELU, relative error below 1e-12) shared by all the terms,
// so each float32 result is the correctly rounded float64 value except
// where the exact value lies within ~1e-12 of a float32 rounding boundary
// (then it is one ulp off). Inputs outside [−20, 20] (and NaN, ±Inf) take
// the generic formulas.

// geluFastLim bounds the inputs the fast kernels take: |2u| ≤ 604 there, so
// expGELU's argument stays far inside the float64 range.
const geluFastLim = 20

// expGELU returns eˣ for |x| ≤ 700 (no range or NaN checks): x = k·ln 2 + r
// with |r| ≤ ln 2 / 2 (Cody–Waite, ln 2 split in two), e^r by its Taylor
// polynomial of degree 11 (truncation below 1e-14), scaled by 2ᵏ through
// the exponent bits.
func expGELU(x float64) float64 {
	const (
		log2e  = 1.44269504088896338700e+00
		ln2Hi  = 6.93147180369123816490e-01
		ln2Lo  = 1.90821492927058770002e-10
		shift  = 0x1.8p52 // adding and subtracting it rounds to an integer
		inv3   = 1.0 / 6
		inv4   = 1.0 / 24
		inv5   = 1.0 / 120
		inv6   = 1.0 / 720
		inv7   = 1.0 / 5040
		inv8   = 1.0 / 40320
		inv9   = 1.0 / 362880
		inv10  = 1.0 / 3628800
		inv11  = 1.0 / 39916800
		inv2   = 0.5
		expOne = 1023
	)
	k := (x*log2e + shift) - shift
	r := (x - k*ln2Hi) - k*ln2Lo
	p := inv11
	p = p*r + inv10
	p = p*r + inv9
	p = p*r + inv8
	p = p*r + inv7
	p = p*r + inv6
	p = p*r + inv5
	p = p*r + inv4
	p = p*r + inv3
	p = p*r + inv2
	p = p*r + 1
	p = p*r + 1
	return p * math.Float64frombits(uint64(int64(k)+expOne)<<52)
}

// geluTanhF32 sets y = f⁽ʲ⁾(x) for j = 0, 1, 2 with, for x in [−20, 20],
// e = e^{2u}, p = 1/(e + 1) (so σ(2u) = e·p, 1 − tanh u = 2p and
// 1 + tanh u = 2e·p):
//
//	f   = x·σ(2u)                              = x·e·p
//	f′  = ½(1 + t) + ½x(1 − t²)u′              = e·p·(1 + 2x·u′·p)
//	f″  = (1 − t²)(u′ − x·t·u′² + ½x·u″),  1 − t² = (2p)(2e·p), t = 1 − 2p
//
// The exponential is written out in the loop (as expGELU) and the loop has
// no calls: with one (even on a branch not taken) f″ ran 2–4× slower. With
// AVX-512 the same formulas run eight float64 lanes at a time
// (geluTanhAVX512, with fused multiply-adds, so the last float64 bits
// differ from the scalar loop's), the scalar loop taking the last len mod 8.
func geluTanhF32(j int, x, y []float32) {
	const (
		log2e = 1.44269504088896338700e+00
		ln2Hi = 6.93147180369123816490e-01
		ln2Lo = 1.90821492927058770002e-10
		shift = 0x1.8p52
	)
	y = y[:len(x)]
	i0, fix := 0, 0 // the vector kernel's part, and where redoing starts
	if haveAVX512 && len(x) >= 8 {
		i0 = len(x) &^ 7
		if geluTanhAVX512(&x[0], &y[0], i0, j) == 0 {
			fix = i0 // it saw no input outside the range
		}
	}
	for i := i0; i < len(x); i++ {
		v := x[i]
		// Clamped (NaN stays NaN), so the exponential stays in range; the
		// inputs outside are redone below.
		xv := max(-geluFastLim, min(geluFastLim, float64(v)))
		x2 := xv * xv
		a := 2 * geluC * (xv + geluA*x2*xv)
		k := (a*log2e + shift) - shift
		r := (a - k*ln2Hi) - k*ln2Lo
		q := 1.0 / 39916800
		q = q*r + 1.0/3628800
		q = q*r + 1.0/362880
		q = q*r + 1.0/40320
		q = q*r + 1.0/5040
		q = q*r + 1.0/720
		q = q*r + 1.0/120
		q = q*r + 1.0/24
		q = q*r + 1.0/6
		q = q*r + 0.5
		q = q*r + 1
		q = q*r + 1
		e := q * math.Float64frombits(uint64(int64(k)+1023)<<52)
		p := 1 / (e + 1)
		switch j {
		case 0:
			y[i] = float32(xv * (e * p))
		case 1:
			u1 := geluC * (1 + 3*geluA*x2)
			y[i] = float32(e * p * (1 + 2*xv*u1*p))
		default:
			u1 := geluC * (1 + 3*geluA*x2)
			t := 1 - 2*p
			s := (2 * p) * (2 * e * p)
			y[i] = float32(s * (u1 - xv*t*u1*u1 + 0.5*xv*(6*geluA*geluC*xv)))
		}
	}
	// Apart from the loop: a call in it slows the loop several times.
	slow := [...]func(float64) float64{geluTanh0, geluTanh1, geluTanh2}[j]
	for i := fix; i < len(x); i++ {
		if xv := float64(x[i]); !(xv >= -geluFastLim && xv <= geluFastLim) {
			y[i] = float32(slow(xv))
		}
	}
}

func geluTanh0F32(x, y []float32) { geluTanhF32(0, x, y) }
func geluTanh1F32(x, y []float32) { geluTanhF32(1, x, y) }
func geluTanh2F32(x, y []float32) { geluTanhF32(2, x, y) }
