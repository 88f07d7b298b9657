package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec implementations. The decoders are pooled because building one is
// far more expensive than a small batch's decompression (a zstd decoder
// allocates its tables and history); the encoders are pooled for the same
// reason. Snappy needs no state.

// appendWriter is an io.Writer that appends to b, so that the streaming
// encoders can write straight after the caller's dst.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

type gzipEncoder struct {
	w   *gzip.Writer
	out appendWriter
}

type lz4Encoder struct {
	w   *lz4.Writer
	out appendWriter
}

type zstdEncoder struct{ e *zstd.Encoder }

type gzipDecoder struct {
	r   gzip.Reader
	src bytes.Reader
}

type lz4Decoder struct {
	r   *lz4.Reader
	src bytes.Reader
}

type zstdDecoder struct {
	d   *zstd.Decoder
	src bytes.Reader
}

var (
	gzipEncoders = sync.Pool{New: func() any {
		return &gzipEncoder{w: gzip.NewWriter(nil)}
	}}
	lz4Encoders = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// 64 KiB blocks are what the Java producer writes, and they keep
		// the pooled writer's buffers small (the default is 4 MiB).
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(fmt.Sprintf("batch: lz4 options: %v", err))
		}
		return &lz4Encoder{w: w}
	}}
	zstdEncoders = sync.Pool{New: func() any {
		e, err := zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1),
			zstd.WithZeroFrames(true),
			// Small windows keep both sides' memory down; Kafka batches
			// are rarely large enough for a bigger window to pay off.
			zstd.WithWindowSize(1<<20),
		)
		if err != nil {
			panic(fmt.Sprintf("batch: zstd encoder options: %v", err))
		}
		z := &zstdEncoder{e: e}
		runtime.AddCleanup(z, func(e *zstd.Encoder) { e.Close() }, e)
		return z
	}}

	gzipDecoders = sync.Pool{New: func() any { return new(gzipDecoder) }}
	lz4Decoders  = sync.Pool{New: func() any { return &lz4Decoder{r: lz4.NewReader(nil)} }}
	zstdDecoders = sync.Pool{New: func() any {
		d, err := zstd.NewReader(nil,
			// One decoder per goroutine, decoding synchronously: no
			// goroutines of its own, and memory proportional to one
			// window.
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			// The window is the decoder's history buffer; a frame that
			// asks for more than the largest output we accept is
			// refused before anything is allocated for it.
			zstd.WithDecoderMaxMemory(DecompressedBytesMax),
		)
		if err != nil {
			panic(fmt.Sprintf("batch: zstd decoder options: %v", err))
		}
		z := &zstdDecoder{d: d}
		runtime.AddCleanup(z, func(d *zstd.Decoder) { d.Close() }, d)
		return z
	}}
)

// xerialMagic starts a snappy payload in the framing of the xerial
// snappy-java SnappyOutputStream, which the Java producer writes: the magic,
// a version and a minimum compatible version (both 1), then blocks, each a
// big-endian uint32 length followed by a raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	// xerialBlockBytes is the block size snappy-java writes.
	xerialBlockBytes = 32 << 10
)

// Compress appends src compressed with codec to dst and returns the
// extended slice. Snappy output uses the xerial framing the Java producer
// writes, which every Kafka client reads; lz4 output is an LZ4 frame with
// 64 KiB blocks.
func Compress(codec Codec, dst, src []byte) ([]byte, error) {
	switch codec {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		enc := gzipEncoders.Get().(*gzipEncoder)
		defer gzipEncoders.Put(enc)
		enc.out.b = dst
		enc.w.Reset(&enc.out)
		_, err := enc.w.Write(src)
		if err == nil {
			err = enc.w.Close()
		}
		out := enc.out.b
		enc.out.b = nil
		enc.w.Reset(nil)
		if err != nil {
			return dst, fmt.Errorf("batch: gzip compress: %w", err)
		}
		return out, nil
	case CodecSnappy:
		dst = append(dst, xerialMagic...)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		dst = binary.BigEndian.AppendUint32(dst, 1)
		for len(src) > 0 {
			n := min(len(src), xerialBlockBytes)
			dst = slices.Grow(dst, 4+s2.MaxEncodedLen(n))
			at := len(dst)
			block := s2.EncodeSnappy(dst[at+4:cap(dst)], src[:n])
			binary.BigEndian.PutUint32(dst[at:at+4], uint32(len(block)))
			dst = dst[:at+4+len(block)]
			src = src[n:]
		}
		return dst, nil
	case CodecLZ4:
		enc := lz4Encoders.Get().(*lz4Encoder)
		defer lz4Encoders.Put(enc)
		enc.out.b = dst
		enc.w.Reset(&enc.out)
		_, err := enc.w.Write(src)
		if err == nil {
			err = enc.w.Close()
		}
		out := enc.out.b
		enc.out.b = nil
		enc.w.Reset(nil)
		if err != nil {
			return dst, fmt.Errorf("batch: lz4 compress: %w", err)
		}
		return out, nil
	case CodecZstd:
		enc := zstdEncoders.Get().(*zstdEncoder)
		defer zstdEncoders.Put(enc)
		return enc.e.EncodeAll(src, dst), nil
	}
	return dst, fmt.Errorf("batch: cannot compress with unknown codec %d", int8(codec))
}

// errTooLarge is returned, wrapped with the limit, when output would pass
// maxBytes.
func errTooLarge(maxBytes int) error {
	return fmt.Errorf("%w: records decompress to more than %d bytes", ErrTooLarge, maxBytes)
}

// decompress appends src decompressed with codec to dst[:0] and returns
// the result. It never produces, and never allocates room for, more than
// maxBytes+1 bytes of output (plus what dst already had): a batch that
// would decompress further is refused with ErrTooLarge. Format errors are
// returned as plain errors for the caller to wrap as corruption.
func decompress(codec Codec, dst, src []byte, maxBytes int) ([]byte, error) {
	dst = dst[:0]
	switch codec {
	case CodecNone:
		if len(src) > maxBytes {
			return nil, errTooLarge(maxBytes)
		}
		return append(dst, src...), nil
	case CodecGzip:
		dec := gzipDecoders.Get().(*gzipDecoder)
		defer gzipDecoders.Put(dec)
		dec.src.Reset(src)
		defer dec.src.Reset(nil)
		if err := dec.r.Reset(&dec.src); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		out, err := readBounded(dst, &dec.r, maxBytes)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			err = fmt.Errorf("gzip: %w", err)
		}
		return out, err
	case CodecSnappy:
		return decodeSnappy(dst, src, maxBytes)
	case CodecLZ4:
		dec := lz4Decoders.Get().(*lz4Decoder)
		defer lz4Decoders.Put(dec)
		dec.src.Reset(src)
		dec.r.Reset(&dec.src)
		defer func() { dec.src.Reset(nil); dec.r.Reset(nil) }()
		out, err := readBounded(dst, dec.r, maxBytes)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			err = fmt.Errorf("lz4: %w", err)
		}
		return out, err
	case CodecZstd:
		dec := zstdDecoders.Get().(*zstdDecoder)
		defer zstdDecoders.Put(dec)
		dec.src.Reset(src)
		defer dec.src.Reset(nil)
		// Streaming rather than DecodeAll, so that the output is bounded
		// by maxBytes exactly and not only by the decoder's own ceiling.
		if err := dec.d.Reset(&dec.src); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		defer dec.d.Reset(nil)
		out, err := readBounded(dst, dec.d, maxBytes)
		if err != nil && !errors.Is(err, ErrTooLarge) {
			err = fmt.Errorf("zstd: %w", err)
		}
		return out, err
	}
	return nil, fmt.Errorf("unknown compression codec %d", int8(codec))
}

// readBoundedZeroReadsMax bounds how many times in a row a reader may
// return nothing before we give up on it, so that a misbehaving codec cannot
// spin us forever.
const readBoundedZeroReadsMax = 100

// readBounded reads r to EOF, appending to dst. It grows dst by doubling but
// never past maxBytes+1, so a decompression bomb costs at most that much
// memory before it is refused with ErrTooLarge.
func readBounded(dst []byte, r io.Reader, maxBytes int) ([]byte, error) {
	limit := len(dst) + maxBytes
	for zeros := 0; ; {
		if len(dst) == cap(dst) {
			grow := min(max(cap(dst), 4<<10), limit+1-len(dst))
			dst = slices.Grow(dst, grow)
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if len(dst) > limit {
			return nil, errTooLarge(maxBytes)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
		if n > 0 {
			zeros = 0
		} else if zeros++; zeros >= readBoundedZeroReadsMax {
			return nil, io.ErrNoProgress
		}
	}
}

var errMalformedXerial = errors.New("snappy: malformed xerial framing")

// decodeSnappy decodes a raw snappy block, or the xerial framing of the
// Java client. Both forms state their decoded sizes up front, so the limit
// is checked before anything is allocated.
func decodeSnappy(dst, src []byte, maxBytes int) ([]byte, error) {
	if len(src) < xerialHeaderSize || !bytes.HasPrefix(src, xerialMagic) {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if n > maxBytes {
			return nil, errTooLarge(maxBytes)
		}
		dst = slices.Grow(dst, n)
		out, err := s2.Decode(dst[:n], src)
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		return out, nil
	}
	// The version fields are not checked: snappy-java writes 1 and 1,
	// and older writers wrote other values that its reader accepts.
	blocks := src[xerialHeaderSize:]
	// First pass: check the framing and sum the decoded sizes, so that
	// the limit is enforced and dst grows once.
	total := 0
	for rem := blocks; len(rem) > 0; {
		if len(rem) < 4 {
			return nil, errMalformedXerial
		}
		size := binary.BigEndian.Uint32(rem)
		rem = rem[4:]
		if uint64(size) > uint64(len(rem)) {
			return nil, errMalformedXerial
		}
		n, err := s2.DecodedLen(rem[:size])
		if err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		if n > maxBytes-total {
			return nil, errTooLarge(maxBytes)
		}
		total += n
		rem = rem[size:]
	}
	dst = slices.Grow(dst, total)
	for len(blocks) > 0 {
		size := binary.BigEndian.Uint32(blocks)
		block := blocks[4 : 4+size]
		n, _ := s2.DecodedLen(block) // checked above
		if _, err := s2.Decode(dst[len(dst):len(dst)+n], block); err != nil {
			return nil, fmt.Errorf("snappy: %w", err)
		}
		dst = dst[:len(dst)+n]
		blocks = blocks[4+size:]
	}
	return dst, nil
}
