// Package mpegts writes one H.264 video stream as an MPEG transport stream:
// PAT and PMT, then one PES packet per access unit with its PTS, a PCR on
// every access unit and the random-access flag on key frames. It is the
// container of the recorder's segments when the recorder encodes frames
// itself; ffmpeg reads it (concat demuxer, -c copy) to cut clips.
package mpegts

import (
	"encoding/binary"
	"io"
	"time"
)

const (
	packetSize = 188
	pidPMT     = 0x1000
	pidVideo   = 0x100
	// streamTypeH264 is ISO/IEC 14496-10 video in the PMT.
	streamTypeH264 = 0x1b
	// ptsOffset keeps the first PTS clear of the PCR before it and of zero.
	ptsOffset = 90000
	// pcrLead is how far the PCR runs behind the PTS: a decoder gets each
	// access unit 100 ms before it is due.
	pcrLead = 9000
)

// Writer writes one transport stream to w. It is not safe for concurrent use.
type Writer struct {
	w   io.Writer
	cc  map[uint16]byte
	buf [packetSize]byte
	// Bytes counts what was written.
	Bytes int64
}

// NewWriter returns a writer; the PAT and PMT are written with the first
// access unit.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, cc: map[uint16]byte{}}
}

// WriteAccessUnit writes one H.264 access unit (Annex B NAL units) shown at
// pts (from the stream's start; 90 kHz in the file). Key frames start with
// the PAT and PMT again, so a file cut at a key frame plays on its own.
func (t *Writer) WriteAccessUnit(au []byte, pts time.Duration, key bool) error {
	if key || t.Bytes == 0 {
		if err := t.writeTables(); err != nil {
			return err
		}
	}
	ts := uint64(pts/(time.Second/90000)) + ptsOffset
	// PES header: start code, stream id 0xE0, unbounded length (video),
	// flags: PTS only (no B-frames, so DTS equals PTS).
	pes := make([]byte, 0, 14+6+len(au))
	pes = append(pes, 0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5)
	pes = appendTimestamp(pes, 0x20, ts)
	// An access unit delimiter first, as H.264 in MPEG-TS expects.
	pes = append(pes, 0, 0, 0, 1, 0x09, 0xf0)
	pes = append(pes, au...)
	first := true
	for len(pes) > 0 {
		b := t.buf[:]
		b[0] = 0x47
		b[1] = byte(pidVideo >> 8)
		b[2] = byte(pidVideo & 0xff)
		if first {
			b[1] |= 0x40 // payload unit start
		}
		var af []byte
		if first {
			// Adaptation field: flags, then the PCR (base 33 bits, 6 reserved, extension 9 bits).
			flags := byte(0x10)
			if key {
				flags |= 0x40 // random access indicator
			}
			pcr := ts - pcrLead
			af = []byte{flags, byte(pcr >> 25), byte(pcr >> 17), byte(pcr >> 9), byte(pcr >> 1), byte(pcr<<7) | 0x7e, 0}
		}
		room := packetSize - 4
		if af != nil {
			room -= 1 + len(af)
		}
		n := min(room, len(pes))
		if n < room {
			// The last packet of the PES: stuff the adaptation field to fill it.
			pad := room - n
			if af == nil {
				if pad == 1 {
					af = []byte{} // a zero-length adaptation field takes its length byte only
					pad = 0
				} else {
					af = []byte{0}
					pad -= 2
				}
			}
			for range pad {
				af = append(af, 0xff)
			}
		}
		b[3] = 0x10 | t.next(pidVideo)
		i := 4
		if af != nil {
			b[3] |= 0x20
			b[4] = byte(len(af))
			copy(b[5:], af)
			i = 5 + len(af)
		}
		copy(b[i:], pes[:n])
		pes = pes[n:]
		first = false
		if err := t.write(b); err != nil {
			return err
		}
	}
	return nil
}

func (t *Writer) writeTables() error {
	pat := []byte{0x00, 0xb0, 0, 0x00, 0x01, 0xc1, 0, 0, 0x00, 0x01, 0xe0 | byte(pidPMT>>8), byte(pidPMT & 0xff)}
	if err := t.writeSection(0, pat); err != nil {
		return err
	}
	pmt := []byte{0x02, 0xb0, 0, 0x00, 0x01, 0xc1, 0, 0,
		0xe0 | byte(pidVideo>>8), byte(pidVideo & 0xff), 0xf0, 0, // PCR PID, no program info
		streamTypeH264, 0xe0 | byte(pidVideo>>8), byte(pidVideo & 0xff), 0xf0, 0}
	return t.writeSection(pidPMT, pmt)
}

// writeSection writes one PSI section (its length and CRC filled in) in one packet.
func (t *Writer) writeSection(pid uint16, sec []byte) error {
	l := len(sec) - 3 + 4
	sec[1] = 0xb0 | byte(l>>8)
	sec[2] = byte(l)
	sec = binary.BigEndian.AppendUint32(sec, crc32MPEG(sec))
	b := t.buf[:]
	b[0] = 0x47
	b[1] = 0x40 | byte(pid>>8)
	b[2] = byte(pid)
	b[3] = 0x10 | t.next(pid)
	b[4] = 0 // pointer field
	n := copy(b[5:], sec)
	for i := 5 + n; i < packetSize; i++ {
		b[i] = 0xff
	}
	return t.write(b)
}

func (t *Writer) write(b []byte) error {
	n, err := t.w.Write(b)
	t.Bytes += int64(n)
	return err
}

// next returns pid's continuity counter and advances it.
func (t *Writer) next(pid uint16) byte {
	c := t.cc[pid]
	t.cc[pid] = (c + 1) & 0x0f
	return c
}

// appendTimestamp appends a 33-bit PES timestamp with its 4-bit prefix.
func appendTimestamp(b []byte, prefix byte, ts uint64) []byte {
	return append(b,
		prefix|byte(ts>>29)&0x0e|1,
		byte(ts>>22), byte(ts>>14)|1,
		byte(ts>>7), byte(ts<<1)|1)
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc32MPEG is the CRC of PSI sections (CRC-32/MPEG-2).
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xffffffff)
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}
