package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
)

// maxNameLen: the name is River's client id, which River caps at 100.
const maxNameLen = 100

// NewNodeName returns a name for this process that no other node sharing
// the database has: "<host>:<pid>:<random>". It names the node in schedule
// runs, as River's client id (river_job.attempted_by) and in the
// application_name of its sessions.
func NewNodeName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	if len(name) > maxNameLen {
		name = name[len(name)-maxNameLen:]
	}
	return name
}

// ApplicationNamePrefix starts the application_name of every node's
// dedicated session; the rest is the node's name. pg_stat_activity and
// pg_locks together tell which node holds which lock.
const ApplicationNamePrefix = "aerofn node "
