-- A number and its spread never break across lines (in a narrow table cell "90.74 ± 0.05" used to
-- take three lines, "91.2 [90.5, 92.0]" two or three): the spaces either side of a lone ± become
-- no-break spaces, in the HTML and in the PDF alike; on the web page so do the spaces in
-- "91.2 [90.5, 92.0]" (in the PDF's wide tables an interval may still wrap inside its cell).
local function nbsp(inlines, j)
  if inlines[j] and inlines[j].t == "Space" then
    inlines[j] = pandoc.Str("\u{a0}")
  end
end

local function text(inline)
  return inline and inline.t == "Str" and inline.text or nil
end

local function unsigned(s)  -- without a leading +, - or − (a minus sign: three bytes, no character class)
  return (s:gsub("^−", ""):gsub("^[-+]", ""))
end

function Inlines(inlines)
  local web = FORMAT:match("html") ~= nil
  for i = 2, #inlines - 1 do
    local before, after = text(inlines[i - 1]), text(inlines[i + 1])
    if text(inlines[i]) == "±" then
      nbsp(inlines, i - 1)
      nbsp(inlines, i + 1)
    elseif web and inlines[i].t == "Space" and before and after then
      local opens = before:match("%d%%?$") and after:sub(1, 1) == "[" and unsigned(after:sub(2)):match("^%d")  -- "91.2 [90.5,"
      local inside = before:match("^%[[^%]]*,$") and unsigned(after):match("^[%d.]+%]")  -- "[90.5, 92.0]"
      if opens or inside then
        nbsp(inlines, i)
      end
    end
  end
  return inlines
end
