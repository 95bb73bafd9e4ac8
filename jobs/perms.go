package jobs

import "github.com/runspaces/rsh/builtins"

// effective returns the permissions a job that asked for req gets under
// ceiling.
func effective(req, ceiling builtins.Permissions) builtins.Permissions {
	c := ceiling
	req.Ceiling = &c
	return req
}
