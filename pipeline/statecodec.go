package pipeline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// The build state is read at the start of every build, so its encoding is
// a compact binary one (a JSON encoding of 1,000 stages took most of a
// no-op build's time): varints, length-prefixed strings, raw 32-byte
// hashes, and a CRC-32C of everything at the end so a damaged file is
// ignored rather than trusted.
//
//	magic
//	stages:  n × (id, key, n × (name, sha, size), n × (note key, note value))
//	files:   n × (path, stat, sha)
//	outputs: n × (path, stage, name, stat, sha)
//	blobs:   n × (sha, stat)
//	crc32c
//
// where stat is size (signed, -1 = untrusted), mtime, ctime (signed
// nanoseconds) and inode.
const stateMagic = "kiln build state\x00\x03"

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// encodeState serialises s (maps in sorted order, so equal states give
// equal bytes).
func encodeState(s *buildState) ([]byte, error) {
	var e encoder
	e.buf = make([]byte, 0, 64+len(s.Stages)*400)
	e.buf = append(e.buf, stateMagic...)
	e.uvarint(uint64(len(s.Stages)))
	for _, id := range sortedKeys(s.Stages) {
		st := s.Stages[id]
		e.str(id)
		e.hash(st.Key)
		e.uvarint(uint64(len(st.Outputs)))
		for _, o := range st.Outputs {
			e.str(o.Name)
			e.hash(o.SHA256)
			e.varint(o.Size)
		}
		e.uvarint(uint64(len(st.Notes)))
		for _, k := range sortedKeys(st.Notes) {
			e.str(k)
			e.str(st.Notes[k])
		}
	}
	e.uvarint(uint64(len(s.Files)))
	for _, p := range sortedKeys(s.Files) {
		rec := s.Files[p]
		e.str(p)
		e.stat(rec)
		e.hash(rec.SHA256)
	}
	e.uvarint(uint64(len(s.Outputs)))
	for _, p := range sortedKeys(s.Outputs) {
		rec := s.Outputs[p]
		e.str(p)
		e.str(rec.Stage)
		e.str(rec.Name)
		e.stat(rec.statRecord)
		e.hash(rec.SHA256)
	}
	e.uvarint(uint64(len(s.Blobs)))
	blobs := make([]digest, 0, len(s.Blobs))
	for sha := range s.Blobs {
		blobs = append(blobs, sha)
	}
	slices.SortFunc(blobs, func(a, b digest) int { return bytes.Compare(a[:], b[:]) })
	for _, sha := range blobs {
		e.hash(sha)
		e.stat(s.Blobs[sha])
	}
	if e.err != nil {
		return nil, e.err
	}
	return binary.LittleEndian.AppendUint32(e.buf, crc32.Checksum(e.buf, crcTable)), nil
}

// decodeState parses what encodeState wrote. Any damage is an error.
func decodeState(data []byte) (*buildState, error) {
	if len(data) < len(stateMagic)+4 || string(data[:len(stateMagic)]) != stateMagic {
		return nil, errors.New("not a kiln build state of this version")
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, errors.New("checksum mismatch")
	}
	// Strings are cut from one copy of the whole file: one allocation
	// instead of one per string.
	d := decoder{buf: body, all: string(body), pos: len(stateMagic)}
	s := newState()
	n := d.count()
	s.Stages = make(map[string]*stageState, n)
	for range n {
		id := d.str()
		st := &stageState{Key: d.hash()}
		if k := d.count(); k > 0 {
			st.Outputs = make(outputSet, k)
			for i := range k {
				st.Outputs[i].Name = d.str()
				st.Outputs[i].blobRef = blobRef{SHA256: d.hash(), Size: d.varint()}
			}
		}
		if k := d.count(); k > 0 {
			st.Notes = make(map[string]string, k)
			for range k {
				key := d.str()
				st.Notes[key] = d.str()
			}
		}
		s.Stages[id] = st
	}
	n = d.count()
	s.Files = make(map[string]statRecord, n)
	for range n {
		p := d.str()
		rec := d.stat()
		rec.SHA256 = d.hash()
		s.Files[p] = rec
	}
	n = d.count()
	s.Outputs = make(map[string]outputRecord, n)
	for range n {
		p := d.str()
		rec := outputRecord{Stage: d.str(), Name: d.str(), statRecord: d.stat()}
		rec.SHA256 = d.hash()
		s.Outputs[p] = rec
	}
	n = d.count()
	s.Blobs = make(map[digest]statRecord, n)
	for range n {
		sha := d.hash()
		s.Blobs[sha] = d.stat()
	}
	if d.err == nil && d.pos != len(body) {
		d.err = errors.New("trailing bytes")
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}

type encoder struct {
	buf []byte
	err error
}

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) str(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) hash(h digest) {
	if h.IsZero() && e.err == nil {
		e.err = errors.New("encode build state: missing hash")
	}
	e.buf = append(e.buf, h[:]...)
}

func (e *encoder) stat(r statRecord) {
	e.varint(r.Size)
	e.varint(r.Mtime)
	e.varint(r.Ctime)
	e.uvarint(r.Ino)
}

type decoder struct {
	buf []byte
	all string // buf as a string
	pos int
	err error
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("damaged at byte %d: %s", d.pos, what)
	}
	d.pos = len(d.buf)
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.pos += n
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		d.fail("bad number")
		return 0
	}
	d.pos += n
	return v
}

// count reads a number of entries, bounded by the bytes left (every entry
// takes at least one byte), so damage cannot cause a huge allocation.
func (d *decoder) count() int {
	v := d.uvarint()
	if v > uint64(len(d.buf)-d.pos) {
		d.fail("count too large")
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	n := d.count()
	s := d.all[d.pos : d.pos+n]
	d.pos += n
	return s
}

func (d *decoder) hash() digest {
	var h digest
	if len(d.buf)-d.pos < len(h) {
		d.fail("short hash")
		return h
	}
	d.pos += copy(h[:], d.buf[d.pos:])
	if h.IsZero() {
		d.fail("missing hash")
	}
	return h
}

func (d *decoder) stat() statRecord {
	return statRecord{Size: d.varint(), Mtime: d.varint(), Ctime: d.varint(), Ino: d.uvarint()}
}
