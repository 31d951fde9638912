package train

import (
	"encoding/binary"
	"fmt"
	"math"
)

// check verifies what a checkpoint's metadata means, once its checksum has
// shown that it is what was written: the step, epoch and evaluation
// counters are in range and agree with each other and with the data
// iterator's position, every recorded float is finite and in range, and the
// blobs the training loop writes have their sizes. The error names the
// field and the values that disagree.
func (c *Checkpoint) check() error {
	switch {
	case c.Step < 0:
		return fmt.Errorf("step %d is negative", c.Step)
	case c.Epoch < 0:
		return fmt.Errorf("epoch %d is negative", c.Epoch)
	case c.Epoch > c.Step:
		return fmt.Errorf("epoch %d is beyond step %d (every epoch takes at least one step)", c.Epoch, c.Step)
	case c.Evals < c.Epoch || c.Evals > c.Step:
		return fmt.Errorf("%d evaluations, out of range for step %d of epoch %d: at least one at the end of every completed epoch (%d) and at most one a step (%d)",
			c.Evals, c.Step, c.Epoch, c.Epoch, c.Step)
	case c.Evals == 0 && c.EvalStep != -1:
		return fmt.Errorf("no evaluation, but the last evaluation's step is %d (want -1)", c.EvalStep)
	case c.Evals > 0 && (c.EvalStep < c.Evals || c.EvalStep > c.Step):
		return fmt.Errorf("the last of %d evaluations at step %d, out of range [%d, step %d] (evaluations are at distinct steps)",
			c.Evals, c.EvalStep, c.Evals, c.Step)
	case !finite(c.Best) || c.Best < 0 || c.Best > 1:
		return fmt.Errorf("the best test accuracy %v is not in [0, 1]", c.Best)
	case !finite(c.Wall) || c.Wall < 0:
		return fmt.Errorf("the training time %v s is not finite and >= 0", c.Wall)
	case c.Opt != nil && c.Opt.Step != int64(c.Step):
		return fmt.Errorf("the optimizer's state is at step %d but the checkpoint at step %d", c.Opt.Step, c.Step)
	}
	if err := c.checkPosition(); err != nil {
		return err
	}
	sums, err := c.blobFloats("epoch_sums", 3)
	if err != nil {
		return err
	}
	since := c.Step - max(c.EvalStep, 0) // steps since the last evaluation
	if loss, acc, n := sums[0], sums[1], sums[2]; n != float64(since) || !(loss >= 0) || !(acc >= 0 && acc <= n) {
		return fmt.Errorf("the running sums since the last evaluation (loss %v, accuracy %v over %v steps) are inconsistent: %d steps since the last evaluation at step %d, loss >= 0 and accuracy in [0, steps]",
			loss, acc, n, since, c.EvalStep)
	}
	last, err := c.blobFloats("last_eval", 2)
	if err != nil {
		return err
	}
	if loss, acc := last[0], last[1]; !(loss >= 0) || !(acc >= 0 && acc <= c.Best) || c.Evals == 0 && (loss != 0 || acc != 0) {
		return fmt.Errorf("the last evaluation (test loss %v, accuracy %v) is inconsistent: loss >= 0, accuracy in [0, the best %v], both 0 before the first of %d evaluations",
			loss, acc, c.Best, c.Evals)
	}
	if _, ok := c.Blobs["dropout_step"]; ok {
		d, err := c.blobFloats("dropout_step", 1)
		if err != nil {
			return err
		}
		if !(d[0] >= 0 && d[0] <= 1<<53 && d[0] == math.Trunc(d[0])) {
			return fmt.Errorf("the dropout step %v is not a whole number in [0, 2^53]", d[0])
		}
	}
	return nil
}

// checkPosition verifies that the step and epoch are where the data
// iterator is: Epoch completed epochs of the iterator's batches per epoch,
// plus the batches delivered in the current one.
func (c *Checkpoint) checkPosition() error {
	d := c.Data
	if d.N < 1 || d.BatchSize < 1 {
		return fmt.Errorf("the data position has %d images in batches of %d: both must be positive", d.N, d.BatchSize)
	}
	per := (d.N + d.BatchSize - 1) / d.BatchSize
	if d.DropLast {
		per = d.N / d.BatchSize
	}
	switch {
	case per < 1:
		return fmt.Errorf("the data position has %d images, fewer than one batch of %d", d.N, d.BatchSize)
	case d.Epoch != c.Epoch:
		return fmt.Errorf("epoch %d, but the data iterator has completed %d epochs", c.Epoch, d.Epoch)
	case d.Pos < 0 || d.Pos > d.N || !d.Started && d.Pos != 0 || d.Pos%d.BatchSize != 0 && d.Pos != d.N:
		return fmt.Errorf("the data position, image %d of %d in batches of %d (epoch started: %v), is not at a batch boundary", d.Pos, d.N, d.BatchSize, d.Started)
	}
	done := (d.Pos + d.BatchSize - 1) / d.BatchSize
	if c.Epoch > (c.Step-done)/per || c.Epoch*per+done != c.Step {
		return fmt.Errorf("step %d, but the data iterator is at batch %d of epoch %d with %d batches an epoch (step %d)",
			c.Step, done, c.Epoch+1, per, c.Epoch*per+done)
	}
	return nil
}

// blobFloats decodes blob name as n finite float64 values.
func (c *Checkpoint) blobFloats(name string, n int) ([]float64, error) {
	b, ok := c.Blobs[name]
	if !ok {
		return nil, fmt.Errorf("no %q record", name)
	}
	if len(b) != 8*n {
		return nil, fmt.Errorf("the %q record has %d bytes, want %d (%d float64 values)", name, len(b), 8*n, n)
	}
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		if !finite(out[i]) {
			return nil, fmt.Errorf("the %q record's value %d is %v, not finite", name, i, out[i])
		}
	}
	return out, nil
}
