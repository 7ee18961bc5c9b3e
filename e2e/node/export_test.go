package node

import "path/filepath"

// CgroupRoots are where a node's cgroup root named name is, in every
// hierarchy, for the tests of what a dead test process leaves.
func CgroupRoots(name string) ([]string, error) {
	mounts, err := cgroupMounts()
	for i, m := range mounts {
		mounts[i] = filepath.Join(m, name)
	}
	return mounts, err
}
