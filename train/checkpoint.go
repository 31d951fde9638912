package train

import (
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/optim"
)

// checkpointVersion is bumped when the checkpoint layout changes.
const checkpointVersion = 1

// Checkpoint is everything needed to resume a run bit-identically: the
// model's parameters and buffers, the optimizer's state (with its random
// state), the data order, and the training loop's own random state.
type Checkpoint struct {
	Version int
	// Model identifies the architecture (its layer-list spec as JSON); a
	// checkpoint is refused for another model.
	Model string
	// Optimizer is the optimizer's name; a checkpoint is refused for another.
	Optimizer string
	Dtype     string
	// Step and Epoch are the completed steps and epochs.
	Step, Epoch int
	// Params holds the parameter values (Slot "value") and model buffers
	// such as batch-norm running statistics (other slots).
	Params []optim.StateTensor
	// Opt is the optimizer's exported state.
	Opt *optim.State
	// Data is the training iterator's position.
	Data data.IterState
	// Blobs holds other random state (the sampled-label generator, ...).
	Blobs map[string][]byte
	// Best is the best test accuracy seen so far; Wall the training time so
	// far in seconds.
	Best, Wall float64
}

// SaveCheckpoint writes c to path atomically: it is encoded into a
// temporary file in the same directory, synced, and renamed over path, so an
// interrupted write leaves the previous checkpoint intact.
func SaveCheckpoint(path string, c *Checkpoint) error {
	c.Version = checkpointVersion
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := gob.NewEncoder(tmp).Encode(c); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: encoding %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// LoadCheckpoint reads a checkpoint written by SaveCheckpoint.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	defer f.Close()
	var c Checkpoint
	if err := gob.NewDecoder(f).Decode(&c); err != nil {
		return nil, fmt.Errorf("checkpoint %s: not a readable checkpoint: %w", path, err)
	}
	if c.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint %s: version %d, this build reads version %d", path, c.Version, checkpointVersion)
	}
	if c.Opt == nil {
		return nil, errors.New("checkpoint " + path + ": no optimizer state")
	}
	return &c, nil
}
