package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/curvopt/curvopt/internal/fileio"
	"github.com/curvopt/curvopt/internal/meminfo"
	"github.com/curvopt/curvopt/nn"
)

// builtinModels names the -model values that are not files (imageModel and
// dagModel build them), for the error of a value that is neither.
const builtinModels = "mlp, cnn, resnetN (N = 6n+2: resnet8, resnet20, …), gpt-tiny"

// readModel reads a model file, a layer list (the format of the curvature
// golden files' "model" field) or a DAG: a regular file of at most
// nn.MaxSpecFileSize bytes (fileio.ReadFile: FIFOs and devices refused, the
// real length checked before reading), parsed strictly by nn.ParseModel.
// Errors name the file and, for its content, the line and column.
func readModel(path string) (nn.DAG, error) {
	b, err := fileio.ReadFile(path, nn.MaxSpecFileSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nn.DAG{}, fmt.Errorf("-model %q: not a built-in model (%s) and no such file", path, builtinModels)
	case errors.Is(err, fileio.ErrTooLarge):
		return nn.DAG{}, fmt.Errorf("-model: %w (nn.MaxSpecFileSize, %d bytes; a model file takes a few kB)", err, nn.MaxSpecFileSize)
	case err != nil:
		return nn.DAG{}, fmt.Errorf("-model: %w", err)
	}
	d, err := nn.ParseModel(b)
	if err != nil {
		return nn.DAG{}, fmt.Errorf("-model %s (%s): %w", path, meminfo.Bytes(int64(len(b))), err)
	}
	return d, nil
}
