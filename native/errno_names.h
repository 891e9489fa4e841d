#pragma once

namespace odirect {

// "EINVAL" for EINVAL; nullptr for a number that is no Linux errno.
const char* ErrnoName(int err);

}  // namespace odirect
