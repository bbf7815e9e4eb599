-- "90.74 ± 0.05" never breaks across lines (in a narrow table cell it used to take three): the
-- spaces either side of a lone ± become no-break spaces, in the HTML and in the PDF alike.
function Inlines(inlines)
  for i = 2, #inlines - 1 do
    if inlines[i].t == "Str" and inlines[i].text == "±" then
      for _, j in ipairs({i - 1, i + 1}) do
        if inlines[j].t == "Space" then
          inlines[j] = pandoc.Str("\u{a0}")
        end
      end
    end
  end
  return inlines
end
