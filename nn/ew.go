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
