// Package data turns image-classification datasets into training batches.
//
// Datasets ([Dataset]) are held in memory as raw bytes, one byte per pixel
// and channel, in (C, H, W) order, with integer labels. They come from
//
//   - [Synthetic]: the built-in default, a deterministic CIFAR-style set of
//     3×32×32 images in 10 shape and texture classes (see its documentation
//     for the generative process and why it separates convolutional nets
//     from pixel-space MLPs);
//   - [LoadCIFAR10] and [LoadCIFAR100]: the CIFAR binary formats;
//   - [LoadMNIST] and [LoadIDX]: IDX files (MNIST, Fashion-MNIST), raw or
//     gzip'd; [FashionMNISTDir] is where the dataset-fashion-mnist package
//     installs Fashion-MNIST;
//   - [LoadText] and [DefaultCorpus]: character-level text, cut into
//     windows by [Text.Windows];
//   - [Load]: a one-string entry point for command lines, e.g.
//     "synthetic", "cifar10 DIR", "cifar100 DIR coarse", "fashion-mnist".
//
// An [Iterator] cuts a dataset into batches: seeded shuffling from PCG
// generators it owns or is given (never the global generator), optional
// drop-last, per-channel normalisation with [Stats] computed on the training
// split, optional random-crop and horizontal-flip augmentation, and float32
// or float64 gorgonia tensors of shape [B, C, H, W] together with a [B, C*H*W]
// view of the same memory. Batch buffers are allocated once and reused. Its
// position can be exported ([Iterator.State]) and restored
// ([Iterator.Restore]) so that a resumed run sees bit-identical batches.
//
// Malformed files are reported as [*FormatError] values naming the file and,
// where one applies, the byte offset. Sizes are checked before memory is
// allocated for them: a file's header against the file's size (for gzip,
// against DEFLATE's 1032:1 bound), against the other file of a pair and
// against the available memory ([Spec].Memory, by default MemAvailable),
// and buffers grow with the data actually read.
//
// Every file is opened as a regular file only (a FIFO is refused without
// waiting for a writer, a device such as /dev/zero without reading it) and
// bounded by its real length, never by what it declares: IDX and CIFAR files
// at 1 GiB, text files at [MaxTextBytes]. A gzip'd IDX file is decompressed
// no further than the elements its header declares and one byte more, so a
// decompression bomb costs what its header claims, which is checked first.
// A text is validated while it is streamed through a fixed 64 KiB buffer
// (UTF-8, NUL bytes, control characters, at least 2 distinct characters)
// before anything in proportion to it is allocated; loaded, it costs about
// 2 bytes per character. [Synthetic] checks its split sizes against
// [MaxSyntheticImages] and the available memory before generating.
package data
