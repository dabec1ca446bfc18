// Command gotlog checks Custodia's audit log with Go's own transparency-log code (golang.org/x/mod/sumdb),
// written by others, sharing nothing with Custodia: the signed checkpoint with sumdb/note, inclusion and
// consistency proofs computed by sumdb/tlog from the server's tiles, which tlog checks against the signed root.
//
// Usage: gotlog BASE_URL TOKEN VERIFIER_KEY LEAF_INDEX LEAF_HASH_HEX OLD_SIZE OLD_ROOT_B64
package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type tiles struct{ base, token string }

func (t tiles) get(path string) ([]byte, error) {
	req, _ := http.NewRequest("GET", t.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+t.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("%s: %d %s", path, resp.StatusCode, body)
	}
	return body, err
}

func (t tiles) Height() int { return 8 }
func (t tiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tile := range ts {
		data, err := t.get("/api/v1/audit/" + tile.Path())
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAILED: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	base, token, vkey := os.Args[1], os.Args[2], os.Args[3]
	t := tiles{base, token}
	text, err := t.get("/api/v1/audit/checkpoints/latest/note")
	if err != nil {
		fail("%v", err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(text, note.VerifierList(verifier))
	if err != nil {
		fail("signed note: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	size, _ := strconv.ParseInt(lines[1], 10, 64)
	rootBytes, _ := base64.StdEncoding.DecodeString(lines[2])
	var root tlog.Hash
	copy(root[:], rootBytes)
	tree := tlog.Tree{N: size, Hash: root}
	reader := tlog.TileHashReader(tree, t)

	index, _ := strconv.ParseInt(os.Args[4], 10, 64)
	leafBytes, _ := hex.DecodeString(os.Args[5])
	var leaf tlog.Hash
	copy(leaf[:], leafBytes)
	proof, err := tlog.ProveRecord(size, index, reader)
	if err != nil {
		fail("inclusion proof from tiles: %v", err)
	}
	if err := tlog.CheckRecord(proof, size, root, index, leaf); err != nil {
		fail("inclusion: %v", err)
	}
	oldSize, _ := strconv.ParseInt(os.Args[6], 10, 64)
	oldBytes, _ := base64.StdEncoding.DecodeString(os.Args[7])
	var oldRoot tlog.Hash
	copy(oldRoot[:], oldBytes)
	tp, err := tlog.ProveTree(size, oldSize, reader)
	if err != nil {
		fail("consistency proof from tiles: %v", err)
	}
	if err := tlog.CheckTree(tp, size, root, oldSize, oldRoot); err != nil {
		fail("consistency: %v", err)
	}
	fmt.Printf("OK %s: tree %d, entry %d included, consistent with tree %d\n", lines[0], size, index, oldSize)
}
