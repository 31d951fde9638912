package train

import (
	"fmt"

	"github.com/curvopt/curvopt/data"
	"github.com/curvopt/curvopt/hessian"
	"gorgonia.org/tensor"
)

// Evaluate returns the mean cross-entropy loss and the accuracy of the
// engine's model (in evaluation mode) on ds; both come from the engine's
// evaluation graph (hessian.Engine.EvalLoss).
func Evaluate(eng *hessian.Engine, ds *data.Dataset, batch int, dt tensor.Dtype, norm *data.Stats) (loss, acc float64, err error) {
	if err := checkEvalArgs("evaluate", eng, ds); err != nil {
		return 0, 0, err
	}
	it, err := data.NewIterator(ds, data.IterConfig{BatchSize: batch, Dtype: dt, Norm: norm})
	if err != nil {
		return 0, 0, err
	}
	return evaluateIter(eng, it, nil)
}

// evaluateIter is Evaluate over one epoch of an unshuffled, unaugmented
// iterator, which can be reused for the next evaluation; p (nil: none)
// hears of its progress in images.
func evaluateIter(eng *hessian.Engine, it *data.Iterator, p *evalProgress) (loss, acc float64, err error) {
	ds := it.Dataset()
	var sumLoss float64
	correct, n := 0, 0
	for it.Next() {
		b := it.Batch()
		l, c, err := eng.EvalLoss(b.X, b.Labels)
		if err != nil {
			return 0, 0, err
		}
		sumLoss += l * float64(len(b.Labels))
		correct += c
		n += len(b.Labels)
		p.update(n)
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("%s is empty", ds.Name)
	}
	return sumLoss / float64(n), float64(correct) / float64(n), nil
}

// checkEvalArgs refuses a nil engine or dataset.
func checkEvalArgs(what string, eng *hessian.Engine, ds *data.Dataset) error {
	switch {
	case eng == nil:
		return fmt.Errorf("train: %s: nil engine", what)
	case ds == nil:
		return fmt.Errorf("train: %s: nil dataset", what)
	}
	return nil
}
