package hostagent

import (
	"encoding/binary"
	"fmt"
)

// The layout of glibc's struct utmp (the same on 32- and 64-bit Linux):
// ut_type is a short at offset 0, ut_user 32 bytes at offset 44.
const (
	utmpRecordSize  = 384
	utmpUserOffset  = 44
	utmpUserProcess = 7 // USER_PROCESS: a login session
)

// parseUtmp counts the login sessions in /run/utmp: records of type
// USER_PROCESS with a user name, as uptime(1) and w(1) count users. A file
// whose length is not a whole number of records is an error; the complete
// records are counted still.
func parseUtmp(b []byte) (int64, error) {
	var n int64
	for off := 0; off+utmpRecordSize <= len(b); off += utmpRecordSize {
		rec := b[off : off+utmpRecordSize]
		if binary.NativeEndian.Uint16(rec) == utmpUserProcess && rec[utmpUserOffset] != 0 {
			n++
		}
	}
	if rest := len(b) % utmpRecordSize; rest != 0 {
		return n, fmt.Errorf("utmp ends with %d bytes of a partial record (records are %d bytes)", rest, utmpRecordSize)
	}
	return n, nil
}
