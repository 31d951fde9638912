package nn

import (
	"fmt"
)

// Limits on the size of a model description, checked by Spec.DAG and
// DAG.Check (and so by ParseSpec, ParseDAG, ParseModel and New) before any shape
// is propagated or any graph built, so that a hostile file costs neither
// minutes nor gigabytes. Building and compiling a model's graphs takes time
// that grows with the square of its depth (a chain of 1,000 layers trains
// its first steps in about 1 s, 3,000 in 12 s, 10,000 in 110 s), hence:
const (
	// MaxLayers is the most layers a Spec may have: a layer list has no
	// residual connections, and the deepest in use has a dozen layers.
	MaxLayers = 1000
	// MaxNodes is the most nodes a DAG may have: room for the deepest
	// built-in model, ResNet-1202 (4,209 nodes).
	MaxNodes = 5000
	// MaxNodeInputs is the most inputs one DAG node may have (an add).
	MaxNodeInputs = 1024
	// MaxNameLen is the longest name, in bytes: of a layer or node, and of
	// every other string of a spec (type, op, loss, input, output). The
	// names in use have at most 20 bytes.
	MaxNameLen = 256
	// MaxRank is the most axes an input_shape may have.
	MaxRank = 8
)

// MaxSpecFileSize is the size limit, in bytes, of a model file (a Spec or a
// DAG as JSON) read from disk, checked by its readers (cmd/train -model)
// against the file's real length before reading: 1 MB, several times the
// largest file in the repository that holds a model (a curvature golden
// file, 140 kB with its data; a model alone takes 1 to 4 kB) and 1 kB
// for each of MaxLayers layers. ParseSpec and ParseDAG take bytes already
// in memory and need no limit of their own: what they allocate is
// proportional to what they are given.
const MaxSpecFileSize = 1 << 20

// checkString refuses a string of more than MaxNameLen bytes, quoting only
// its beginning.
func checkString(what, s string) error {
	if len(s) > MaxNameLen {
		return fmt.Errorf("%s %.40q… has %d bytes, more than the limit of %d (nn.MaxNameLen)", what, s, len(s), MaxNameLen)
	}
	return nil
}

func (s Spec) checkLimits() error {
	if len(s.InputShape) > MaxRank {
		return fmt.Errorf("nn: spec: input_shape has %d axes, more than the limit of %d (nn.MaxRank)", len(s.InputShape), MaxRank)
	}
	if len(s.Layers) > MaxLayers {
		return fmt.Errorf("nn: spec: %d layers, more than the limit of %d (nn.MaxLayers)", len(s.Layers), MaxLayers)
	}
	if err := checkString("loss", s.Loss); err != nil {
		return fmt.Errorf("nn: spec: %w", err)
	}
	for i, l := range s.Layers {
		if err := checkString("type", l.Type); err != nil {
			return fmt.Errorf("nn: spec: layer %d: %w", i, err)
		}
		if err := checkString("name", l.Name); err != nil {
			return fmt.Errorf("nn: spec: layer %d (%s): %w", i, l.Type, err)
		}
	}
	return nil
}

func (d DAG) checkLimits() error {
	if len(d.InputShape) > MaxRank {
		return fmt.Errorf("nn: DAG: input_shape has %d axes, more than the limit of %d (nn.MaxRank)", len(d.InputShape), MaxRank)
	}
	if len(d.Nodes) > MaxNodes {
		return fmt.Errorf("nn: DAG: %d nodes, more than the limit of %d (nn.MaxNodes)", len(d.Nodes), MaxNodes)
	}
	for _, s := range [][2]string{{"loss", d.Loss}, {"output", d.Output}} {
		if err := checkString(s[0], s[1]); err != nil {
			return fmt.Errorf("nn: DAG: %w", err)
		}
	}
	for i, n := range d.Nodes {
		if err := checkString("op", n.Op); err != nil {
			return fmt.Errorf("nn: DAG: node %d: %w", i, err)
		}
		if err := checkString("name", n.Name); err != nil {
			return fmt.Errorf("nn: DAG: node %d (%s): %w", i, n.Op, err)
		}
		if len(n.Inputs) > MaxNodeInputs {
			return fmt.Errorf("nn: DAG: node %d (%s %q): %d inputs, more than the limit of %d (nn.MaxNodeInputs)", i, n.Op, n.Name, len(n.Inputs), MaxNodeInputs)
		}
		for j, in := range n.Inputs {
			if err := checkString(fmt.Sprintf("input %d", j), in); err != nil {
				return fmt.Errorf("nn: DAG: node %d (%s %q): %w", i, n.Op, n.Name, err)
			}
		}
	}
	return nil
}
