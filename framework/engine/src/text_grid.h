// Plain-text, Markdown and CSV rendering shared by the compare outputs (engine-internal).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace chestlab::text {

using Grid = std::vector<std::vector<std::string>>;  // rows of cells; the first row is the header

// Terminal columns of UTF-8 text ("±" is two bytes, one column).
std::size_t display_width(const std::string& text);
// The first `left_columns` columns left-aligned, the others right-aligned, two spaces apart,
// no trailing spaces.
std::string render_aligned(const Grid& grid, std::size_t left_columns);
// A Markdown table with the same alignment; cells escaped.
std::string render_markdown(const Grid& grid, std::size_t left_columns);
// Escapes the characters Markdown tables and emphasis read: | * _
std::string markdown_escape(const std::string& text);
// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
std::string csv_field(const std::string& text);
std::string join(const std::vector<std::string>& parts, const char* separator);

}  // namespace chestlab::text
