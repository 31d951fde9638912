package nn

import (
	"encoding/json"
	"fmt"

	"github.com/curvopt/curvopt/internal/strictjson"
)

// modelKeys are the top-level keys of both model formats: a document is
// decoded into it first (strictly: a key of neither format is refused with
// its position), and its "layers" or "nodes" says which format it holds.
type modelKeys struct {
	InputShape json.RawMessage `json:"input_shape"`
	Tokens     json.RawMessage `json:"tokens"`
	Layers     json.RawMessage `json:"layers"`
	Nodes      json.RawMessage `json:"nodes"`
	Output     json.RawMessage `json:"output"`
	Loss       json.RawMessage `json:"loss"`
}

// ParseModel decodes a model in either JSON format and returns its DAG: a
// layer list (a Spec: it has "layers"; parsed by ParseSpec and converted
// by Spec.DAG) or a DAG (it has "nodes"; parsed by ParseDAG). Both are
// read strictly, so a document that has both keys, or a key of the other
// format, is refused, naming the key and its position.
func ParseModel(data []byte) (DAG, error) {
	var k modelKeys
	if err := strictjson.Decode(data, &k); err != nil {
		return DAG{}, fmt.Errorf("nn: parsing model: %w", err)
	}
	switch {
	case k.Layers != nil && k.Nodes != nil:
		return DAG{}, fmt.Errorf(`nn: parsing model: it has both "layers" (a layer list) and "nodes" (a DAG)`)
	case k.Layers != nil:
		s, err := ParseSpec(data)
		if err != nil {
			return DAG{}, err
		}
		return s.DAG()
	}
	return ParseDAG(data)
}
