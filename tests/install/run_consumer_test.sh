#!/usr/bin/env bash
# run_consumer_test.sh: install a built tree into a temporary prefix and use
# it the way an application would (ctest: InstallConsumerTest).
#
#   run_consumer_test.sh BUILD_DIR CONSUMER_SRC [LIBDIR [CMAKE [CXX [GENERATOR]]]]
#
# 1. cmake --install BUILD_DIR --prefix TMP; check the layout: headers,
#    libtcpcrypt.so -> .so.0 (SONAME) -> .so.VERSION, the CLI, the CMake
#    package, tcpcrypt.pc; and that the library exports the public API only.
# 2. CONSUMER_SRC configured and built with find_package(tcpcrypt CONFIG)
#    (CMAKE_PREFIX_PATH=TMP), then run.
# 3. The same main.cc built with `c++ $(pkg-config --cflags --libs tcpcrypt)`
#    (PKG_CONFIG_PATH=TMP/LIBDIR/pkgconfig), then run.
# Needs a full build first (`cmake --build BUILD_DIR`).
set -euo pipefail

build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
libdir=${3:-lib}
cmake=${4:-cmake}
cxx=${5:-c++}
generator=${6:-}

work=$(mktemp -d "${build}/install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

fail() {
  echo "InstallConsumerTest: $*" >&2
  exit 1
}

# 1. Install and check the layout.
if ! "$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1; then
  cat "$work/install.log" >&2
  fail "cmake --install failed (build the tree first: cmake --build $build)"
fi
for h in client.h options.h server.h session.h status.h; do
  [[ -f $prefix/include/tcpcrypt/$h ]] || fail "missing include/tcpcrypt/$h"
done
# Only the public headers: nothing internal leaks into the include dir.
extra=$(find "$prefix/include" -type f ! -path "$prefix/include/tcpcrypt/*.h")
[[ -z $extra ]] || fail "unexpected installed headers: $extra"

so=$prefix/$libdir/libtcpcrypt.so
[[ -L $so ]] || fail "$so is not the development symlink"
[[ -L $so.0 ]] || fail "$so.0 (the SONAME link) is missing"
real=$(readlink -f "$so")
[[ $real == "$so".0.* ]] || fail "libtcpcrypt.so resolves to $real, not libtcpcrypt.so.0.*"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libtcpcrypt.so.0 ]] || fail "SONAME is '$soname', want libtcpcrypt.so.0"
[[ -x $prefix/bin/tcpcrypt ]] || fail "the tcpcrypt CLI is not installed"
"$prefix/bin/tcpcrypt" --help >/dev/null || fail "the installed CLI does not run"
for f in tcpcryptConfig.cmake tcpcryptConfigVersion.cmake tcpcryptTargets.cmake; do
  [[ -f $prefix/$libdir/cmake/tcpcrypt/$f ]] || fail "missing $libdir/cmake/tcpcrypt/$f"
done
[[ -f $prefix/$libdir/pkgconfig/tcpcrypt.pc ]] || fail "missing $libdir/pkgconfig/tcpcrypt.pc"

# Exports: the public API (cmake/libtcpcrypt.map) and nothing else.
nm -D --defined-only -C "$real" | awk '{ $1 = ""; $2 = ""; sub(/^  /, ""); print }' \
  >"$work/exports.txt"
public='^(tcpcrypt::(Client|Server|Session|Status|Password)::|tcpcrypt::(StatusCodeName|AuthMechanismName|ChannelName|LogLevelName|ToHex|internal::StatusOrValueOfError)(\[abi:cxx11\])?\(|(typeinfo|typeinfo name|vtable) for tcpcrypt::(Client|Server|Session)$)'
leaked=$(grep -Ev "$public" "$work/exports.txt" || true)
[[ -z $leaked ]] || fail "libtcpcrypt.so exports symbols outside the public API:
$leaked"
for want in 'tcpcrypt::Client::Create(' 'tcpcrypt::Server::Create(' \
            'tcpcrypt::Status::ToString' 'tcpcrypt::Password::Password(' \
            'tcpcrypt::StatusCodeName(' 'tcpcrypt::ChannelName(' 'tcpcrypt::AuthMechanismName(' \
            'tcpcrypt::ToHex' 'tcpcrypt::Session::session_id_hex' 'tcpcrypt::LogLevelName('; do
  grep -qF "$want" "$work/exports.txt" || fail "libtcpcrypt.so does not export $want"
done
# Self-contained: every symbol it uses comes from a library it names.
for lib in libssl libcrypto libsodium libprotobuf libsqlite3; do
  readelf -d "$real" | grep -q "NEEDED.*\[$lib\.so" || fail "libtcpcrypt.so does not need $lib"
done
echo "installed: $(cd "$prefix" && find . -type f -o -type l | sort | tr '\n' ' ')"
echo "exports: $(wc -l <"$work/exports.txt") public symbols"

export LD_LIBRARY_PATH=$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}

# 2. CMake: find_package(tcpcrypt CONFIG REQUIRED).
gen_args=()
[[ -n $generator ]] && gen_args=(-G "$generator")
if ! "$cmake" -S "$src" -B "$work/cmake-build" "${gen_args[@]}" \
      -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON >"$work/cmake.log" 2>&1 ||
   ! "$cmake" --build "$work/cmake-build" >>"$work/cmake.log" 2>&1; then
  cat "$work/cmake.log" >&2
  fail "the CMake consumer does not build"
fi
out=$("$work/cmake-build/consumer") || fail "the CMake consumer failed: $out"
[[ $out =~ ^channel\ tcpcrypt,\ session\ ID\ [0-9a-f]{66}$ ]] ||
  fail "the CMake consumer printed: $out"
echo "cmake consumer: $out"

# 3. pkg-config, with the installed headers as the only include path.
export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
version=$(pkg-config --modversion tcpcrypt) || fail "pkg-config does not find tcpcrypt"
# shellcheck disable=SC2046  # pkg-config output is meant to split
"$cxx" -std=c++20 -Wall -Wextra -Werror -pthread "$src/main.cc" \
  $(pkg-config --cflags --libs tcpcrypt) -o "$work/consumer-pc" ||
  fail "the pkg-config consumer does not build"
out=$("$work/consumer-pc") || fail "the pkg-config consumer failed: $out"
[[ $out =~ ^channel\ tcpcrypt,\ session\ ID\ [0-9a-f]{66}$ ]] ||
  fail "the pkg-config consumer printed: $out"
echo "pkg-config consumer (tcpcrypt $version): $out"
