/* Stand-in for the macOS SDK's <TargetConditionals.h>, for scripts/macos-check.sh only.
 *
 * There is no macOS SDK on the Linux machines that type-check steward for macOS, but ring's
 * build script compiles its C even for `cargo check`, and ring's <ring-core/base.h> includes
 * this header on every Apple target to learn which Apple OS it builds for. The real header
 * derives these macros from the compiler's target; here they say "macOS, not iOS, watchOS,
 * tvOS or a simulator", which is what both darwin targets the check covers are.
 *
 * Nothing built with this is linked or run: the check type-checks only. The other headers
 * ring needs come from clang itself (stddef.h, stdint.h, ...), or are not needed because the
 * check builds ring with RING_CORE_NOSTDLIBINC (ring's own switch for having no libc headers:
 * it then uses its own memcpy, memset and assert instead of <string.h> and <assert.h>). */
#ifndef STEWARD_STUB_TARGETCONDITIONALS_H
#define STEWARD_STUB_TARGETCONDITIONALS_H

#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 1
#define TARGET_OS_IPHONE 0
#define TARGET_OS_IOS 0
#define TARGET_OS_MACCATALYST 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_TV 0
#define TARGET_OS_VISION 0
#define TARGET_OS_BRIDGE 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_EMBEDDED 0

#endif
