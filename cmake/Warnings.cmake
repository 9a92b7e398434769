# tcpcrypt_warnings(target): the project's warning set; errors under
# TCPCRYPT_WERROR (CI builds turn it on).
function(tcpcrypt_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wunused -Woverloaded-virtual -Wimplicit-fallthrough
    -Wswitch-enum -Wformat=2)
  if(TCPCRYPT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
