package train

import (
	"fmt"
	"path/filepath"

	"github.com/curvopt/curvopt/optim"
)

// checkpoint saves the run's state to OutDir/checkpoint.gob (nothing when
// there is no OutDir).
func (r *run) checkpoint() error {
	if r.cfg.OutDir == "" {
		return nil
	}
	st, err := r.opt.State()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	ds, err := r.it.State()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	c := &Checkpoint{
		Model: r.modelKey, Optimizer: r.opt.Name(), Dtype: r.cfg.Dtype.String(),
		Step: r.step, Epoch: r.epoch, Opt: st, Data: ds, Best: r.best, Wall: r.wall,
		Blobs: map[string][]byte{},
	}
	params := r.eng.Params()
	var vals optim.State
	for _, p := range params {
		vals.ExportSlot("value", []optim.Param{p}, []*dense{p.Value})
	}
	for _, name := range r.model.BatchNormNames() {
		mean, vari, err := r.model.RunningStats(name)
		if err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
		p := []optim.Param{{Name: name, Value: mean}}
		vals.ExportSlot("running_mean", p, []*dense{mean})
		vals.ExportSlot("running_var", p, []*dense{vari})
	}
	c.Params = vals.Tensors
	for name, pcg := range map[string]interface{ MarshalBinary() ([]byte, error) }{"sampler": r.samplerPCG, "hessian": r.hessPCG} {
		b, err := pcg.MarshalBinary()
		if err != nil {
			return fmt.Errorf("train: checkpoint: %w", err)
		}
		c.Blobs[name] = b
	}
	c.Blobs["epoch_sums"] = encodeFloats(r.epLoss, r.epAcc, float64(r.epSteps))
	if ds := r.model.DropoutState(); ds != nil {
		c.Blobs["dropout_step"] = encodeFloats(float64(ds.Step()))
	}
	if err := SaveCheckpoint(filepath.Join(r.cfg.OutDir, checkpointFile), c); err != nil {
		return err
	}
	return nil
}

// restore loads OutDir/checkpoint.gob into the run, refusing a checkpoint of
// another model, optimizer or dtype.
func (r *run) restore() error {
	path := filepath.Join(r.cfg.OutDir, checkpointFile)
	c, err := LoadCheckpoint(path)
	if err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	switch {
	case c.Model != r.modelKey:
		return fmt.Errorf("train: resume: %s was made for another model (%s), not %s", path, c.Model, r.modelKey)
	case c.Optimizer != r.opt.Name():
		return fmt.Errorf("train: resume: %s was made for optimizer %s, not %s", path, c.Optimizer, r.opt.Name())
	case c.Dtype != r.cfg.Dtype.String():
		return fmt.Errorf("train: resume: %s holds %s parameters, not %s", path, c.Dtype, r.cfg.Dtype)
	}
	vals := optim.State{Tensors: c.Params}
	params := r.eng.Params()
	loaded, err := vals.ImportSlot("train: resume", "value", params)
	if err != nil {
		return err
	}
	type bnPair struct{ mean, vari, m, v *dense }
	var bns []bnPair
	// All batch-norm layers at once: ImportSlot refuses a slot's tensors
	// of parameters it was not given.
	var bnParams []optim.Param
	for _, name := range r.model.BatchNormNames() {
		mean, vari, err := r.model.RunningStats(name)
		if err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		bnParams = append(bnParams, optim.Param{Name: name, Value: mean})
		bns = append(bns, bnPair{mean: mean, vari: vari})
	}
	if len(bnParams) > 0 {
		m, err := vals.ImportSlot("train: resume", "running_mean", bnParams)
		if err != nil {
			return err
		}
		v, err := vals.ImportSlot("train: resume", "running_var", bnParams)
		if err != nil {
			return err
		}
		for i := range bns {
			bns[i].m, bns[i].v = m[i], v[i]
		}
	}
	if err := r.opt.LoadState(params, c.Opt); err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if err := r.it.Restore(c.Data); err != nil {
		return fmt.Errorf("train: resume: %w", err)
	}
	if err := r.samplerPCG.UnmarshalBinary(c.Blobs["sampler"]); err != nil {
		return fmt.Errorf("train: resume: sampler state: %w", err)
	}
	if err := r.hessPCG.UnmarshalBinary(c.Blobs["hessian"]); err != nil {
		return fmt.Errorf("train: resume: hessian state: %w", err)
	}
	sums := decodeFloats(c.Blobs["epoch_sums"], 3)
	// Everything is checked: now overwrite the live state.
	for i, p := range params {
		optim.CopyInto(p.Value, loaded[i])
	}
	for _, b := range bns {
		optim.CopyInto(b.mean, b.m)
		optim.CopyInto(b.vari, b.v)
	}
	r.step, r.epoch, r.best, r.wall = c.Step, c.Epoch, c.Best, c.Wall
	if ds := r.model.DropoutState(); ds != nil {
		ds.SetStep(uint64(decodeFloats(c.Blobs["dropout_step"], 1)[0])) // the masks continue where they were
	}
	r.epLoss, r.epAcc, r.epSteps = sums[0], sums[1], int(sums[2])
	return nil
}
