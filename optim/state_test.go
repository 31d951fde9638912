package optim_test

import (
	"errors"
	"math"
	"testing"

	"github.com/curvopt/curvopt/optim"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorgonia.org/tensor"
)

func TestStateKeepsDtypeAndRoundTrips(t *testing.T) {
	w32 := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{1, 2, 3, 4, 5, 6}))
	b64 := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float64{0.1, 0.2, 0.3}))
	params := []optim.Param{{Name: "w", Value: w32}, {Name: "b", Value: b64}}
	var s optim.State
	s.ExportSlot("exp_avg", params, []*tensor.Dense{w32, b64})
	w, b := s.Find("w", "exp_avg"), s.Find("b", "exp_avg")
	require.NotNil(t, w)
	assert.Equal(t, "float32", w.Dtype)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, w.F32)
	assert.Nil(t, w.F64, "a float32 state holds no float64 copy")
	assert.Equal(t, []float64{0.1, 0.2, 0.3}, b.F64)

	w32.Float32s()[0] = 42 // the export is a copy
	assert.Equal(t, float32(1), w.F32[0])

	got, err := s.ImportSlot("test", "exp_avg", params)
	require.NoError(t, err)
	assert.Equal(t, []float32{1, 2, 3, 4, 5, 6}, got[0].Float32s())
	assert.Equal(t, []float64{0.1, 0.2, 0.3}, got[1].Float64s())
}

// TestImportSlotRefusesNonFinite: a NaN or ±Inf anywhere in a state tensor
// is refused with an error naming the parameter, the slot and the entry.
func TestImportSlotRefusesNonFinite(t *testing.T) {
	for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, dt := range []tensor.Dtype{tensor.Float32, tensor.Float64} {
			v := tensor.New(tensor.Of(dt), tensor.WithShape(4))
			params := []optim.Param{{Name: "fc.weight", Value: v}}
			var s optim.State
			s.ExportSlot("exp_avg_sq", params, []*tensor.Dense{v})
			st := s.Find("fc.weight", "exp_avg_sq")
			if dt == tensor.Float32 {
				st.F32[2] = float32(bad)
			} else {
				st.F64[2] = bad
			}
			_, err := s.ImportSlot("adam", "exp_avg_sq", params)
			require.Error(t, err, "%v %v", dt, bad)
			assert.True(t, errors.Is(err, optim.ErrNonFinite))
			for _, want := range []string{"adam", "fc.weight", "exp_avg_sq", "entry 2"} {
				assert.Contains(t, err.Error(), want)
			}
		}
	}
}

func TestCheckHeaderRefusesNonFiniteScalar(t *testing.T) {
	s := &optim.State{Optimizer: "mfac", Scalars: map[string]float64{"count": math.NaN()}}
	err := s.CheckHeader("mfac")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"count"`)
	s.Scalars["count"] = 3
	assert.NoError(t, s.CheckHeader("mfac"))
}

func TestStateTensorCheck(t *testing.T) {
	st := optim.SliceTensor("w", "m", []int{2}, []float32{1, 2})
	assert.NoError(t, st.Check(tensor.Float32, tensor.Shape{2}))
	assert.ErrorContains(t, st.Check(tensor.Float64, tensor.Shape{2}), "dtype")
	assert.ErrorContains(t, st.Check(tensor.Float32, tensor.Shape{3}), "shape")
	st.F64 = []float64{1}
	assert.Error(t, st.Check(tensor.Float32, tensor.Shape{2}), "values in both dtypes")
}
