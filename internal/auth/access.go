package auth

// Node is a container as access is computed over it.
type Node struct {
	ID     int64
	Parent int64 // 0 for the root
	// Inherit is false for a container that stops inheritance: only its
	// own members (and members of containers below it) see it.
	Inherit bool
}

// Effective computes a user's permissions on every container from the
// grants (memberships: container → flags): a grant covers its container
// and everything below it, down to a container that stops inheritance,
// which only a grant on it (or below it) opens. Grants add up. Containers
// the user cannot see are absent from the answer.
func Effective(nodes []Node, grants map[int64]Permission) map[int64]Permission {
	children := map[int64][]Node{}
	for _, n := range nodes {
		children[n.Parent] = append(children[n.Parent], n)
	}
	out := map[int64]Permission{}
	var walk func(n Node, inherited Permission)
	walk = func(n Node, inherited Permission) {
		p := grants[n.ID]
		if n.Inherit {
			p |= inherited
		}
		if p != 0 {
			out[n.ID] |= p
		}
		for _, c := range children[n.ID] {
			walk(c, p)
		}
	}
	for _, root := range children[0] {
		walk(root, 0)
	}
	return out
}
