package nn

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

// TestConvAloneKeepsNoCache: a convolution whose family has no other op
// (a forward-only graph, as evaluation builds) computes the same bits as
// one whose weight gradient shares its columns, and keeps no column cache
// (N·C·K²·OH·OW values less).
func TestConvAloneKeepsNoCache(t *testing.T) {
	g, err := newConvGeom(tensor.Shape{5, 3, 9, 9}, tensor.Shape{4, 3, 3, 3}, 1, 1)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 5*3*9*9)
	w := make([]float32, 4*3*3*3)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	for i := range w {
		w[i] = float32(rng.NormFloat64())
	}
	alone, family := joinShare(nil), joinShare(joinShare(nil))
	var s1, s2 any
	y1, y2 := make([]float32, 5*4*9*9), make([]float32, 5*4*9*9)
	convFwd(&g, &s1, alone, true, x, w, nil, y1)
	convFwd(&g, &s2, family, true, x, w, nil, y2)
	assert.Equal(t, y2, y1)
	assert.Nil(t, alone.c, "a family of one keeps no columns")
	assert.NotNil(t, family.c, "a family of two keeps the columns for the weight gradient")
}
