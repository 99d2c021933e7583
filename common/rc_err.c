/* SPDX-License-Identifier: MIT */
/* rc_strerror()/rc_errname(): the printable side of the error table. */
#include "rc_err.h"

#include <errno.h>
#include <string.h>

const char *rc_strerror(int code)
{
	switch (code) {
#define RC_ERR_MSG(name, val, msg) \
	case val:                  \
		return msg;
		RC_ERR_MAP(RC_ERR_MSG)
#undef RC_ERR_MSG
	default:
		break;
	}
	if (code < 0 && code >= -4095)
		return strerror(-code);
	return code == 0 ? "success" : "unknown error";
}

const char *rc_errname(int code)
{
	switch (code) {
#define RC_ERR_NAME(name, val, msg) \
	case val:                   \
		return #name;
		RC_ERR_MAP(RC_ERR_NAME)
#undef RC_ERR_NAME
	default:
		break;
	}
	if (code < 0 && code >= -4095) {
		const char *n = strerrorname_np(-code);
		return n ? n : "EUNKNOWN";
	}
	return code == 0 ? "OK" : "UNKNOWN";
}
