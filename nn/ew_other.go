//go:build !amd64 || purego

package nn

// haveEW is false where the elementwise kernels of ew_amd64.s do not exist;
// the Go loops of ew.go run instead.
const haveEW = false

func ewScale32(x, y *float32, n int, s float32)     { panic("nn: no elementwise kernel") }
func ewAddScalar32(x, y *float32, n int, s float32) { panic("nn: no elementwise kernel") }
func ewAdd32(a, b, o *float32, n int)               { panic("nn: no elementwise kernel") }
func ewMul32(a, b, o *float32, n int)               { panic("nn: no elementwise kernel") }
func ewMaskMul32(x, gv, o *float32, n int)          { panic("nn: no elementwise kernel") }

func ewScaleAdd32(x, y *float32, n int, s, b float32) { panic("nn: no elementwise kernel") }

func ewLin32(x, t, a, o *float32, n int, mu, k1, k2, b float32) { panic("nn: no elementwise kernel") }
func ewLinMask32(x, t, a, o *float32, n int, mu, k1, k2, b float32) {
	panic("nn: no elementwise kernel")
}

func ewAffine32(x, o *float32, n int, mu, k, b float32, relu bool) {
	panic("nn: no elementwise kernel")
}

func transpose8Strip(src *float32, ss int, dst *float32, ds int, nb int) {
	panic("nn: no elementwise kernel")
}

func padRows32(src, dst *float32, h, w, wp int) { panic("nn: no elementwise kernel") }

func deinterleave32(src, even, odd *float32, n int) { panic("nn: no elementwise kernel") }
