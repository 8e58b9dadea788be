// ffs_png: a small PNG writer over libpng, for the pictures `ffstream
// saliency` draws (8-bit RGB, no alpha, no interlace). Every libpng error
// (its longjmp) and every write error comes back as -1 with one line
// naming the file; nothing here exits or asserts on a bad path.
#ifndef FFS_PNG_H
#define FFS_PNG_H

#include <stddef.h>
#include <stdint.h>

// Writes rgb (height, width, 3) bytes, row by row from the top, to path
// (replacing it). Returns 0, or -1 with "PATH: reason" in err.
int ffs_png_write_rgb(const char *path, const uint8_t *rgb, int width, int height, char *err,
                      size_t errlen);

#endif
