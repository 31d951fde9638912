package nn

// Elementwise loops over slices of one length, for either element type.
// float32 slices go through the AVX2 kernels of ew_amd64.s where they exist
// (eight lanes, each doing the scalar loop's one IEEE operation, so results
// are bitwise the same, except which input NaN's payload a NaN result
// carries), the last len mod 8 elements and float64 through
// the Go loops.

// ewSplit returns the length the vector kernels take for n elements (0
// without them or for float64).
func ewSplit[T Float](x []T) (int, []float32) {
	if !haveEW || len(x) < 8 {
		return 0, nil
	}
	xs, ok := any(x).([]float32)
	if !ok {
		return 0, nil
	}
	return len(x) &^ 7, xs
}

// vecScale sets y = x·s.
func vecScale[T Float](x, y []T, s T) {
	y = y[:len(x)]
	i, xs := ewSplit(x)
	if i > 0 {
		ewScale32(&xs[0], &any(y).([]float32)[0], i, float32(s))
	}
	for ; i < len(x); i++ {
		y[i] = x[i] * s
	}
}

// vecAddScalar sets y = x + s (y may be x).
func vecAddScalar[T Float](x, y []T, s T) {
	y = y[:len(x)]
	i, xs := ewSplit(x)
	if i > 0 {
		ewAddScalar32(&xs[0], &any(y).([]float32)[0], i, float32(s))
	}
	for ; i < len(x); i++ {
		y[i] = x[i] + s
	}
}

// vecAdd sets o = a + b (o may be a or b).
func vecAdd[T Float](a, b, o []T) {
	b, o = b[:len(a)], o[:len(a)]
	i, as := ewSplit(a)
	if i > 0 {
		ewAdd32(&as[0], &any(b).([]float32)[0], &any(o).([]float32)[0], i)
	}
	for ; i < len(a); i++ {
		o[i] = a[i] + b[i]
	}
}

// vecMul sets o = a·b (o may be a or b).
func vecMul[T Float](a, b, o []T) {
	b, o = b[:len(a)], o[:len(a)]
	i, as := ewSplit(a)
	if i > 0 {
		ewMul32(&as[0], &any(b).([]float32)[0], &any(o).([]float32)[0], i)
	}
	for ; i < len(a); i++ {
		o[i] = a[i] * b[i]
	}
}

// sumF64 returns Σ x[i] accumulated in float64 (the AVX-512 kernel for
// float32 where it exists: eight-lane partial sums, so the order of the
// additions, and the last bits of the sum, differ from a sequential loop).
func sumF64[T Float](x []T) float64 {
	var s0, s1 float64
	i := 0
	if xs, ok := any(x).([]float32); ok && haveAVX512 && len(xs) >= 16 {
		i = len(xs) &^ 15
		s0 = sumF32F64(&xs[0], i)
	}
	for ; i+2 <= len(x); i += 2 {
		s0 += float64(x[i])
		s1 += float64(x[i+1])
	}
	if i < len(x) {
		s0 += float64(x[i])
	}
	return s0 + s1
}

// dotF64 returns Σ a[i]·b[i] accumulated in float64 (equal lengths), with
// the AVX-512 kernel for float32 as sumF64.
func dotF64[T Float](a, b []T) float64 {
	b = b[:len(a)]
	var s0, s1 float64
	i := 0
	if as, ok := any(a).([]float32); ok && haveAVX512 && len(as) >= 16 {
		i = len(as) &^ 15
		s0 = dotF32F64(&as[0], &any(b).([]float32)[0], i)
	}
	for ; i+2 <= len(a); i += 2 {
		s0 += float64(a[i]) * float64(b[i])
		s1 += float64(a[i+1]) * float64(b[i+1])
	}
	if i < len(a) {
		s0 += float64(a[i]) * float64(b[i])
	}
	return s0 + s1
}

// shiftedMoments returns Σd and Σd² accumulated in float64 for d = x + s
// rounded to T: bitwise sumF64(d) and dotF64(d, d) of the stored d (the
// AVX-512 kernel for float32 keeps their lanes and final order), in one
// pass and without storing d. Batch norm's shifted moments.
func shiftedMoments[T Float](x []T, s T) (sum, sq float64) {
	var s0, s1, q0, q1 float64
	i := 0
	if xs, ok := any(x).([]float32); ok && haveAVX512 && len(xs) >= 16 {
		i = len(xs) &^ 15
		s0, q0 = shiftedMomentsF32F64(&xs[0], i, float32(s))
	}
	for ; i+2 <= len(x); i += 2 {
		d0, d1 := float64(x[i]+s), float64(x[i+1]+s)
		s0 += d0
		s1 += d1
		q0 += d0 * d0
		q1 += d1 * d1
	}
	if i < len(x) {
		d := float64(x[i] + s)
		s0 += d
		q0 += d * d
	}
	return s0 + s1, q0 + q1
}

// sumDotF64 returns Σw' and Σw'·x accumulated in float64 (equal lengths),
// w' = w where a > +0 by its bits (maskRow's test) and 0 elsewhere, or w'
// = w when a is nil: bitwise sumF64(w') and dotF64(w', x) of the stored w'
// (the AVX-512 kernel for float32 keeps their lanes and final order), in
// one pass and without storing w'. Batch norm's backward reduction.
func sumDotF64[T Float](w, x, a []T) (sw, swx float64) {
	x = x[:len(w)]
	if a != nil {
		a = a[:len(w)]
	}
	var s0, s1, d0, d1 float64
	i := 0
	if ws, ok := any(w).([]float32); ok && haveAVX512 && len(ws) >= 16 {
		i = len(ws) &^ 15
		var ap *float32
		if a != nil {
			ap = &any(a).([]float32)[0]
		}
		s0, d0 = sumDotF32F64(&ws[0], &any(x).([]float32)[0], ap, i)
	}
	at := func(j int) float64 {
		if a != nil && !positive(a[j]) {
			return 0
		}
		return float64(w[j])
	}
	for ; i+2 <= len(w); i += 2 {
		w0, w1 := at(i), at(i+1)
		s0 += w0
		s1 += w1
		d0 += w0 * float64(x[i])
		d1 += w1 * float64(x[i+1])
	}
	if i < len(w) {
		w0 := at(i)
		s0 += w0
		d0 += w0 * float64(x[i])
	}
	return s0 + s1, d0 + d1
}

// vecScaleAdd sets y = x·s + b with the product rounded first (as a scale
// followed by an add; no fused multiply-add).
func vecScaleAdd[T Float](x, y []T, s, b T) {
	y = y[:len(x)]
	i, xs := ewSplit(x)
	if i > 0 {
		ewScaleAdd32(&xs[0], &any(y).([]float32)[0], i, float32(s), float32(b))
	}
	for ; i < len(x); i++ {
		y[i] = T(x[i]*s) + b
	}
}
