#include "text_grid.h"

#include <algorithm>

namespace chestlab::text {

std::size_t display_width(const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::string render_aligned(const Grid& grid, std::size_t left_columns) {
  if (grid.empty()) return "";
  std::vector<std::size_t> widths(grid.front().size(), 0);
  for (const auto& line : grid)
    for (std::size_t i = 0; i < line.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(line[i]));
  std::string out;
  for (const auto& line : grid) {
    std::string text;
    for (std::size_t i = 0; i < line.size() && i < widths.size(); ++i) {
      if (i > 0) text += "  ";
      const std::string fill(widths[i] - std::min(widths[i], display_width(line[i])), ' ');
      text += i >= left_columns ? fill + line[i] : line[i] + fill;
    }
    while (!text.empty() && text.back() == ' ') text.pop_back();
    out += text + "\n";
  }
  return out;
}

std::string markdown_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|' || c == '*' || c == '_') out += '\\';
    out += c;
  }
  return out;
}

std::string render_markdown(const Grid& grid, std::size_t left_columns) {
  std::string out;
  for (std::size_t r = 0; r < grid.size(); ++r) {
    std::string line = "|";
    for (const std::string& cell : grid[r]) line += " " + markdown_escape(cell) + " |";
    out += line + "\n";
    if (r == 0) {
      std::string rule = "|";
      for (std::size_t i = 0; i < grid[r].size(); ++i) rule += i < left_columns ? " :--- |" : " ---: |";
      out += rule + "\n";
    }
  }
  return out;
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string join(const std::vector<std::string>& parts, const char* separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

}  // namespace chestlab::text
