package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/curvopt/curvopt/nn"
)

// readSpec reads a layer-list spec file (the format of the curvature golden
// files' "model" field).
func readSpec(path string) (nn.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nn.Spec{}, fmt.Errorf("-model: %w", err)
	}
	var s nn.Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nn.Spec{}, fmt.Errorf("-model %s: %w", path, err)
	}
	if _, _, err := s.Check(); err != nil {
		return nn.Spec{}, fmt.Errorf("-model %s: %w", path, err)
	}
	return s, nil
}
