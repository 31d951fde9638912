package train

import (
	"encoding/binary"
	"math"

	"gorgonia.org/tensor"
)

// dense is gorgonia's dense tensor.
type dense = tensor.Dense

func encodeFloats(xs ...float64) []byte {
	b := make([]byte, 8*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(x))
	}
	return b
}

func decodeFloats(b []byte, n int) []float64 {
	out := make([]float64, n)
	for i := 0; i < n && 8*i+8 <= len(b); i++ {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return out
}
