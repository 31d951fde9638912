package nn

import (
	"testing"

	"github.com/stretchr/testify/require"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestDropoutRowsOfGlobalBatch: with DropoutState.SetRows(lo, hi) a
// dropout op over hi − lo rows yields rows [lo, hi) of the mask the same op
// draws for the whole batch, for an even and an uneven split (what a
// data-parallel run relies on); a size that is not whole rows and bad
// rows are errors.
func TestDropoutRowsOfGlobalBatch(t *testing.T) {
	const rows, width = 7, 6
	st := NewDropoutState(11)
	st.Next()
	apply := func(n int) ([]float64, error) {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float64, 2, gorgonia.WithShape(n, width), gorgonia.WithName("x"))
		y, err := Dropout(x, 0.4, st, 3)
		require.NoError(t, err)
		back := make([]float64, n*width)
		for i := range back {
			back[i] = 1
		}
		out, err := y.Op().Do(tensor.New(tensor.WithShape(n, width), tensor.WithBacking(back)))
		if err != nil {
			return nil, err
		}
		return append([]float64(nil), out.Data().([]float64)...), nil
	}
	want, err := apply(rows)
	require.NoError(t, err)
	require.Contains(t, want, 0.0)
	for _, split := range [][]int{{0, 4, 7}, {0, 3, 5, 7}} {
		for i := 0; i+1 < len(split); i++ {
			lo, hi := split[i], split[i+1]
			require.NoError(t, st.SetRows(lo, hi))
			got, err := apply(hi - lo)
			require.NoError(t, err)
			require.Equal(t, want[lo*width:hi*width], got, "rows [%d, %d)", lo, hi)
		}
	}
	require.NoError(t, st.SetRows(0, 4))
	_, err = apply(5) // 30 values are not 4 whole rows
	require.ErrorContains(t, err, "not 4 whole rows")
	require.Error(t, st.SetRows(3, 2))
	require.Error(t, st.SetRows(-1, 2))
	require.Error(t, st.SetRows(2, 2))
	require.NoError(t, st.SetRows(0, 0))
	again, err := apply(rows)
	require.NoError(t, err)
	require.Equal(t, want, again)
}
