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
