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
