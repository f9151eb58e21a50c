"""What LibreOffice sees of a macro-enabled workbook: its VBA modules, its form buttons and the
macros they run, and the drop-down of each sheet's excelnet_action cell. Run by the Python
that has LibreOffice's `uno` module (tests/test_macros.py does):

    python3 tests/lo_macros.py UNO-CONNECTION BOOK...

prints one JSON object: book → {"modules": {library: {module: source}}, "buttons":
[[sheet, label, script]], "actions": {sheet: [validation type, formula, value]}}.
"""

import json
import os
import sys

import uno
from com.sun.star.beans import PropertyValue


def inspect(desktop, path):
    hidden = PropertyValue()
    hidden.Name, hidden.Value = "Hidden", True
    url = uno.systemPathToFileUrl(os.path.abspath(path))
    doc = desktop.loadComponentFromURL(url, "_blank", 0, (hidden,))
    try:
        modules = {}
        libraries = doc.BasicLibraries
        for lib in libraries.ElementNames:
            libraries.loadLibrary(lib)
            code = libraries.getByName(lib)
            modules[lib] = {m: code.getByName(m) for m in code.ElementNames}
        buttons, actions = [], {}
        for sheet in doc.Sheets:
            forms = sheet.DrawPage.Forms
            for i in range(forms.Count):
                form = forms.getByIndex(i)
                for j in range(form.Count):
                    events = form.getScriptEvents(j)
                    script = [e.ScriptCode for e in events if e.EventMethod == "actionPerformed"]
                    label = getattr(form.getByIndex(j), "Label", None)
                    buttons.append([sheet.Name, label, script[0] if script else None])
            if sheet.NamedRanges.hasByName("excelnet_action"):
                cell = sheet.NamedRanges.getByName("excelnet_action").ReferredCells
                rule = cell.Validation
                actions[sheet.Name] = [rule.Type.value, rule.getFormula1(), cell.String]
        return {"modules": modules, "buttons": buttons, "actions": actions}
    finally:
        doc.close(True)


def main(connect, paths):
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext(
        "com.sun.star.bridge.UnoUrlResolver", local
    )
    ctx = resolver.resolve(f"uno:{connect};urp;StarOffice.ComponentContext")
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    print(json.dumps({p: inspect(desktop, p) for p in paths}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
