package train

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// legacyRunConfig returns rc as JSON in the layout before issue 20, with
// model recorded under key: "model" (a layer list) or "dag" (a DAG, with
// the empty layer list the old code wrote under "model").
func legacyRunConfig(t testing.TB, rc RunConfig, key string, model any) []byte {
	t.Helper()
	b, err := json.Marshal(rc)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m))
	mb, err := json.Marshal(model)
	require.NoError(t, err)
	m["model"] = json.RawMessage(`{"input_shape":null,"layers":null}`)
	m[key] = mb
	out, err := json.Marshal(m)
	require.NoError(t, err)
	return out
}
