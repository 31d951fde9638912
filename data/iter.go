package data

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"gorgonia.org/tensor"
)

// Augment configures random training-time augmentation. Both transforms are
// drawn per image from the iterator's augmentation generator.
type Augment struct {
	// Pad > 0 enables random cropping: the image is padded by Pad black
	// (raw value 0) pixels on every side and an H×W window is cropped at a
	// uniformly random offset.
	Pad int
	// Flip mirrors the image horizontally with probability 1/2.
	Flip bool
}

// IterConfig configures an Iterator.
type IterConfig struct {
	// BatchSize is the number of images per batch (> 0).
	BatchSize int
	// Shuffle draws a fresh random order at the start of every epoch;
	// otherwise images come in dataset order.
	Shuffle bool
	// DropLast drops the final batch of an epoch when it is smaller than
	// BatchSize; otherwise it is delivered with fewer rows.
	DropLast bool
	// Seed seeds the shuffling and augmentation generators when they are
	// not injected.
	Seed uint64
	// ShuffleRNG and AugmentRNG optionally inject the PCG sources used for
	// the epoch permutations and for augmentation; nil means a source derived
	// from Seed. They are separate so that turning augmentation on does not
	// change the data order. The iterator advances (and Restore overwrites)
	// them.
	ShuffleRNG, AugmentRNG *rand.PCG
	// Dtype is tensor.Float32 (the default when unset) or tensor.Float64.
	Dtype tensor.Dtype
	// Norm, when non-nil, normalises channel c to (x/255 - Mean[c]) / Std[c];
	// when nil, values are x/255 in [0, 1].
	Norm *Stats
	// Augment configures augmentation; the zero value disables it.
	Augment Augment
}

// Batch is one batch of images and labels. All of its slices and tensors are
// owned by the Iterator and overwritten by the next call to Next; copy what
// must outlive that, and do not reshape X or Flat in place.
type Batch struct {
	// X has shape [B, C, H, W].
	X *tensor.Dense
	// Flat has shape [B, C*H*W] and shares X's backing array.
	Flat *tensor.Dense
	// Labels holds the B class indices.
	Labels []int
	// Indices holds the dataset indices of the B images.
	Indices []int
}

// Size returns the number of images in the batch.
func (b *Batch) Size() int { return len(b.Labels) }

// IterState is a plain-data, gob-encodable snapshot of an Iterator's position:
// restoring it into an iterator over the same dataset with the same
// configuration makes it deliver exactly the batches the original would have.
type IterState struct {
	// N, BatchSize, Shuffle, DropLast and Aug identify the configuration
	// the state belongs to; Restore rejects a mismatch.
	N         int
	BatchSize int
	Shuffle   bool
	DropLast  bool
	Aug       Augment
	// Epoch counts completed epochs.
	Epoch int
	// Started reports whether Perm holds the permutation of the current
	// epoch (false before its first batch).
	Started bool
	// Pos is the position in Perm of the next image.
	Pos int
	// Perm is the current epoch's order (nil when not Started).
	Perm []int
	// ShuffleRNG and AugmentRNG are the PCG states (PCG.MarshalBinary).
	ShuffleRNG, AugmentRNG []byte
}

// Iterator delivers batches from a Dataset, epoch after epoch. Its buffers are
// allocated once, so iterating allocates nothing in steady state. It is not
// safe for concurrent use.
//
//	for epoch := 0; epoch < epochs; epoch++ {
//		for it.Next() {
//			b := it.Batch()
//			// use b.X (or b.Flat) and b.Labels
//		}
//	}
type Iterator struct {
	ds       *Dataset
	cfg      IterConfig
	shufSrc  *rand.PCG
	augSrc   *rand.PCG
	shufRNG  *rand.Rand
	epoch    int
	started  bool
	pos      int
	perm     []int
	f64      bool
	buf32    []float32
	buf64    []float64
	lut32    [][256]float32
	lut64    [][256]float64
	full     Batch // tensors for a full batch
	part     Batch // tensors for the short last batch, created on first use
	cur      Batch
	labels   []int
	indices  []int
	rowBuf32 []float32
	rowBuf64 []float64
}

// NewIterator returns an iterator over ds. The dataset must not be modified
// while the iterator is in use.
func NewIterator(ds *Dataset, cfg IterConfig) (*Iterator, error) {
	if err := ds.Validate(); err != nil {
		return nil, err // names the dataset
	}
	n := ds.Len()
	switch {
	case n == 0:
		return nil, fmt.Errorf("data: new iterator over %q: empty dataset", ds.Name)
	case cfg.BatchSize <= 0:
		return nil, fmt.Errorf("data: new iterator over %q: batch size %d must be positive", ds.Name, cfg.BatchSize)
	case cfg.DropLast && cfg.BatchSize > n:
		return nil, fmt.Errorf("data: new iterator over %q: batch size %d exceeds %d images with DropLast: no batches", ds.Name, cfg.BatchSize, n)
	case cfg.Augment.Pad < 0:
		return nil, fmt.Errorf("data: new iterator over %q: negative crop padding %d", ds.Name, cfg.Augment.Pad)
	}
	it := &Iterator{ds: ds, cfg: cfg, shufSrc: cfg.ShuffleRNG, augSrc: cfg.AugmentRNG}
	switch {
	case cfg.Dtype.Type == nil || cfg.Dtype == tensor.Float32:
		it.cfg.Dtype = tensor.Float32
	case cfg.Dtype == tensor.Float64:
		it.f64 = true
	default:
		return nil, fmt.Errorf("data: new iterator over %q: unsupported dtype %v (want Float32 or Float64)", ds.Name, cfg.Dtype)
	}
	if it.shufSrc == nil {
		it.shufSrc = rand.NewPCG(splitmix64(cfg.Seed), splitmix64(cfg.Seed^0x5eed_0001))
	}
	if it.augSrc == nil {
		it.augSrc = rand.NewPCG(splitmix64(cfg.Seed^0xa065_0002), splitmix64(cfg.Seed^0xa065_0003))
	}
	it.shufRNG = rand.New(it.shufSrc)
	c := ds.C
	mean, std := make([]float64, c), make([]float64, c)
	for i := range std {
		std[i] = 1
	}
	if cfg.Norm != nil {
		if len(cfg.Norm.Mean) != c || len(cfg.Norm.Std) != c {
			return nil, fmt.Errorf("data: new iterator over %q: normalisation stats have %d means and %d stds for %d channels",
				ds.Name, len(cfg.Norm.Mean), len(cfg.Norm.Std), c)
		}
		for i := range c {
			if !(cfg.Norm.Std[i] > 0) {
				return nil, fmt.Errorf("data: new iterator over %q: std %v of channel %d must be positive", ds.Name, cfg.Norm.Std[i], i)
			}
		}
		copy(mean, cfg.Norm.Mean)
		copy(std, cfg.Norm.Std)
	}
	// A batch never holds more than the dataset: buffers for min(B, N)
	// images (a batch size beyond N yields one short batch per epoch).
	bs, chw := min(cfg.BatchSize, n), ds.ImageSize()
	if it.f64 {
		it.lut64 = make([][256]float64, c)
		it.buf64 = make([]float64, bs*chw)
		it.rowBuf64 = make([]float64, ds.W)
	} else {
		it.lut32 = make([][256]float32, c)
		it.buf32 = make([]float32, bs*chw)
		it.rowBuf32 = make([]float32, ds.W)
	}
	for ch := range c {
		for v := range 256 {
			x := (float64(v)/255 - mean[ch]) / std[ch]
			if it.f64 {
				it.lut64[ch][v] = x
			} else {
				it.lut32[ch][v] = float32(x)
			}
		}
	}
	it.labels = make([]int, bs)
	it.indices = make([]int, bs)
	it.perm = make([]int, n)
	if bs == cfg.BatchSize {
		it.full = it.makeBatch(bs)
	}
	return it, nil
}

func (it *Iterator) makeBatch(b int) Batch {
	d := it.ds
	chw := d.ImageSize()
	var back any
	if it.f64 {
		back = it.buf64[:b*chw]
	} else {
		back = it.buf32[:b*chw]
	}
	return Batch{
		X:       tensor.New(tensor.WithShape(b, d.C, d.H, d.W), tensor.WithBacking(back)),
		Flat:    tensor.New(tensor.WithShape(b, chw), tensor.WithBacking(back)),
		Labels:  it.labels[:b],
		Indices: it.indices[:b],
	}
}

// Epoch returns the number of completed epochs.
func (it *Iterator) Epoch() int { return it.epoch }

// BatchesPerEpoch returns how many batches Next delivers per epoch.
func (it *Iterator) BatchesPerEpoch() int {
	n, bs := it.ds.Len(), it.cfg.BatchSize
	if it.cfg.DropLast {
		return n / bs
	}
	return (n + bs - 1) / bs
}

// Dataset returns the dataset being iterated.
func (it *Iterator) Dataset() *Dataset { return it.ds }

// Batch returns the batch filled by the last successful Next.
func (it *Iterator) Batch() *Batch { return &it.cur }

func (it *Iterator) startEpoch() {
	for i := range it.perm {
		it.perm[i] = i
	}
	if it.cfg.Shuffle {
		it.shufRNG.Shuffle(len(it.perm), func(i, j int) { it.perm[i], it.perm[j] = it.perm[j], it.perm[i] })
	}
	it.started = true
	it.pos = 0
}

// Next fills the next batch of the current epoch and reports whether there
// was one. At the end of an epoch it returns false once and moves to the next
// epoch, so the following call to Next starts a new (reshuffled) epoch.
func (it *Iterator) Next() bool {
	if !it.started {
		it.startEpoch()
	}
	n, bs := len(it.perm), it.cfg.BatchSize
	b := min(bs, n-it.pos)
	if b <= 0 || (it.cfg.DropLast && b < bs) {
		it.epoch++
		it.started = false
		it.pos = 0
		return false
	}
	if b == bs {
		it.cur = it.full
	} else {
		if it.part.X == nil || it.part.Size() != b {
			it.part = it.makeBatch(b)
		}
		it.cur = it.part
	}
	idx := it.perm[it.pos : it.pos+b]
	copy(it.indices, idx)
	d := it.ds
	chw := d.ImageSize()
	for k, i := range idx {
		it.labels[k] = d.Labels[i]
		src := d.Pixels[i*chw : (i+1)*chw]
		if it.f64 {
			fillImage(it.buf64[k*chw:(k+1)*chw], src, it.lut64, d.C, d.H, d.W, it.augDraw(), it.rowBuf64)
		} else {
			fillImage(it.buf32[k*chw:(k+1)*chw], src, it.lut32, d.C, d.H, d.W, it.augDraw(), it.rowBuf32)
		}
	}
	it.pos += b
	return true
}

// augParams is one image's augmentation: crop offsets in [0, 2*pad] and a
// flip flag.
type augParams struct {
	pad, dx, dy int
	flip        bool
}

func (it *Iterator) augDraw() augParams {
	a := it.cfg.Augment
	if a.Pad == 0 && !a.Flip {
		return augParams{}
	}
	r := it.augSrc.Uint64()
	p := augParams{pad: a.Pad, flip: a.Flip && r>>63 == 1}
	if a.Pad > 0 {
		m := uint64(2*a.Pad + 1)
		p.dx = int((r & 0xffffff) % m)
		p.dy = int(((r >> 24) & 0xffffff) % m)
	}
	return p
}

// fillImage converts one raw (C, H, W) image through the per-channel lookup
// tables into dst, applying the crop offset and flip. row is scratch of
// length w.
func fillImage[T float32 | float64](dst []T, src []uint8, lut [][256]T, c, h, w int, a augParams, row []T) {
	plane := h * w
	if a.pad == 0 && !a.flip {
		for ch := range c {
			l := &lut[ch]
			d := dst[ch*plane : (ch+1)*plane]
			s := src[ch*plane : (ch+1)*plane]
			for i, v := range s {
				d[i] = l[v]
			}
		}
		return
	}
	// Output (y, x) comes from input (y+dy-pad, x'+dx-pad), where x' is x or
	// w-1-x when flipped; outside the input it is the padding value lut[0].
	ox, oy := a.dx-a.pad, a.dy-a.pad
	for ch := range c {
		l := &lut[ch]
		padV := l[0]
		for y := range h {
			d := dst[ch*plane+y*w : ch*plane+(y+1)*w]
			sy := y + oy
			if sy < 0 || sy >= h {
				for x := range d {
					d[x] = padV
				}
				continue
			}
			s := src[ch*plane+sy*w : ch*plane+(sy+1)*w]
			// Crop the row into row (unflipped), then copy or mirror.
			for x := range row {
				sx := x + ox
				if sx < 0 || sx >= w {
					row[x] = padV
				} else {
					row[x] = l[s[sx]]
				}
			}
			if a.flip {
				for x := range d {
					d[x] = row[w-1-x]
				}
			} else {
				copy(d, row)
			}
		}
	}
}

// State exports the iterator's position and generator states.
func (it *Iterator) State() (IterState, error) {
	s := IterState{
		N: it.ds.Len(), BatchSize: it.cfg.BatchSize, Shuffle: it.cfg.Shuffle, DropLast: it.cfg.DropLast,
		Aug: it.cfg.Augment, Epoch: it.epoch, Started: it.started, Pos: it.pos,
	}
	if it.started {
		s.Perm = append([]int(nil), it.perm...)
	}
	var err error
	if s.ShuffleRNG, err = it.shufSrc.MarshalBinary(); err != nil {
		return IterState{}, fmt.Errorf("data: iterator state: shuffle generator: %w", err)
	}
	if s.AugmentRNG, err = it.augSrc.MarshalBinary(); err != nil {
		return IterState{}, fmt.Errorf("data: iterator state: augmentation generator: %w", err)
	}
	return s, nil
}

// Restore sets the iterator to a state exported by State from an iterator
// over a dataset of the same size with the same batch size, shuffle, drop-last
// and augmentation settings. The next batch is then the one the exporting
// iterator would have delivered next. On error the iterator is unchanged.
func (it *Iterator) Restore(s IterState) error {
	n := it.ds.Len()
	var errs []error
	if s.N != n {
		errs = append(errs, fmt.Errorf("dataset size %d, iterator has %d", s.N, n))
	}
	if s.BatchSize != it.cfg.BatchSize || s.Shuffle != it.cfg.Shuffle || s.DropLast != it.cfg.DropLast || s.Aug != it.cfg.Augment {
		errs = append(errs, fmt.Errorf("configuration (batch %d, shuffle %v, drop-last %v, augment %+v) differs from iterator's (batch %d, shuffle %v, drop-last %v, augment %+v)",
			s.BatchSize, s.Shuffle, s.DropLast, s.Aug, it.cfg.BatchSize, it.cfg.Shuffle, it.cfg.DropLast, it.cfg.Augment))
	}
	if s.Epoch < 0 || s.Pos < 0 || s.Pos > n {
		errs = append(errs, fmt.Errorf("invalid position (epoch %d, pos %d)", s.Epoch, s.Pos))
	}
	if s.Started {
		if len(s.Perm) != n {
			errs = append(errs, fmt.Errorf("permutation has %d entries, want %d", len(s.Perm), n))
		} else {
			seen := make([]bool, n)
			for _, p := range s.Perm {
				if p < 0 || p >= n || seen[p] {
					errs = append(errs, fmt.Errorf("permutation is not a permutation of 0..%d", n-1))
					break
				}
				seen[p] = true
			}
		}
	} else if s.Pos != 0 {
		errs = append(errs, fmt.Errorf("position %d in an epoch not yet started", s.Pos))
	}
	shuf, aug := rand.NewPCG(0, 0), rand.NewPCG(0, 0)
	if err := shuf.UnmarshalBinary(s.ShuffleRNG); err != nil {
		errs = append(errs, fmt.Errorf("shuffle generator: %w", err))
	}
	if err := aug.UnmarshalBinary(s.AugmentRNG); err != nil {
		errs = append(errs, fmt.Errorf("augmentation generator: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("data: restore iterator: %w", errors.Join(errs...))
	}
	*it.shufSrc, *it.augSrc = *shuf, *aug
	it.epoch, it.started, it.pos = s.Epoch, s.Started, s.Pos
	if s.Started {
		copy(it.perm, s.Perm)
	}
	it.cur = Batch{}
	return nil
}
