# Writes the bytes of INPUT as a C array SYMBOL (NUL-terminated; SYMBOL_size
# excludes the NUL) into OUTPUT: the web page of ramc serve goes into the
# binary without a hand-maintained C string.
file(READ "${INPUT}" hex HEX)
string(LENGTH "${hex}" hex_length)
math(EXPR size "${hex_length} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
# about 16 bytes a line, so the file stays readable in an editor
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(name "${INPUT}" NAME)
file(WRITE "${OUTPUT}.tmp" "/* Generated from src/serve/${name} by src/serve/embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "const char ${SYMBOL}[] = {\n${bytes}0};\n"
  "const size_t ${SYMBOL}_size = ${size};\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
