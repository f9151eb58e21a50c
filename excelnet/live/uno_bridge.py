"""The UNO side of excelnet's LibreOffice adapter (excelnet/live/uno_engine.py).

LibreOffice's Python bridge, `uno`, is importable only by the Python it was built for (Debian's
python3-uno: /usr/bin/python3), so this file runs there, as a helper process, with nothing but
the standard library and uno. It speaks JSON, one object a line: a request {"op": ..., ...} on
stdin, a reply {"ok": result} or {"error": text, "gone": bool} on stdout ("gone": LibreOffice
or the document is no longer there). Areas are [first row, first col, last row, last col],
0-based. Formulas go out in Excel's grammar (as Excel's Range.Formula gives them), translated
by LibreOffice's own formula parser.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import uno
from com.sun.star.beans import PropertyValue
from com.sun.star.lang import DisposedException
from com.sun.star.sheet.AddressConvention import OOO, XL_OOX
from com.sun.star.sheet.FormulaLanguage import API, OOXML
from com.sun.star.sheet.FormulaMapGroup import (
    ARRAY_SEPARATORS,
    BINARY_OPERATORS,
    FUNCTIONS,
    SEPARATORS,
    UNARY_OPERATORS,
)
from com.sun.star.sheet.FormulaResult import ERROR as ERROR_RESULT
from com.sun.star.table import CellAddress

OPCODES = FUNCTIONS | SEPARATORS | ARRAY_SEPARATORS | UNARY_OPERATORS | BINARY_OPERATORS
DIGITS = re.compile(r"\d+")


def _prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


class Office:
    """One document in one LibreOffice: started here (headless or with a window) or reached
    through a UNO connection string (`connect`, e.g. "socket,host=localhost,port=2002")."""

    def __init__(self, path, connect=None, headless=True):
        self.process, self.profile, self.status = None, None, None
        self.path, self.doc = os.path.abspath(path), None
        try:
            self._open(path, connect, headless)
        except BaseException:
            self.stop()
            raise

    def _open(self, path, connect, headless):
        if connect is None:
            connect = self._start(headless)
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext(
            "com.sun.star.bridge.UnoUrlResolver", local
        )
        url = f"uno:{connect};urp;StarOffice.ComponentContext"
        deadline = time.monotonic() + (60 if self.process else 5)
        while True:
            try:
                self.ctx = resolver.resolve(url)
                break
            except Exception as e:
                # a LibreOffice already running with the user's profile takes the request
                # over and the new soffice exits at once; a headless one of its own must stay
                if self.profile and self.process.poll() is not None:
                    raise RuntimeError("soffice exited at start") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no LibreOffice answers at {connect!r} ({e})") from None
                time.sleep(0.1)
        smgr = self.ctx.ServiceManager
        self.desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", self.ctx)
        self.hidden = headless
        self.doc = self._document(os.path.abspath(path))
        self._parsers()

    def _start(self, headless):
        exe = shutil.which("soffice") or shutil.which("libreoffice")
        if exe is None:
            raise RuntimeError("soffice is not installed")
        pipe = f"excelnet-{os.getpid()}-{time.monotonic_ns()}"
        cmd = [exe, "--norestore", "--nologo", f"--accept=pipe,name={pipe};urp;"]
        if headless:  # a profile of its own: never disturbs (or waits for) a running office
            self.profile = tempfile.mkdtemp(prefix="excelnet-lo-")
            cmd[1:1] = [f"-env:UserInstallation=file://{self.profile}", "--headless"]
        self.process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a window stays open after excelnet (and its terminal) exits
        )
        return f"pipe,name={pipe}"

    def _document(self, path):
        url = uno.systemPathToFileUrl(path)
        for doc in self.desktop.Components:  # already open there: train that one
            if getattr(doc, "URL", None) == url and doc.supportsService(
                "com.sun.star.sheet.SpreadsheetDocument"
            ):
                return doc
        doc = self.desktop.loadComponentFromURL(url, "_blank", 0, (_prop("Hidden", self.hidden),))
        if doc is None or not doc.supportsService("com.sun.star.sheet.SpreadsheetDocument"):
            folder, name = os.path.split(path)
            lock = os.path.join(folder, f".~lock.{name}#")
            why = f" (open elsewhere? its lock file {lock} exists)" if os.path.exists(lock) else ""
            raise RuntimeError(f"could not open it as a spreadsheet{why}")
        return doc

    def _parsers(self):
        """Two formula parsers: LibreOffice's API grammar in, Excel's (OOXML) grammar out."""
        mapper = self.doc.createInstance("com.sun.star.sheet.FormulaOpCodeMapper")
        self.calc = self.doc.createInstance("com.sun.star.sheet.FormulaParser")
        self.calc.FormulaConvention, self.calc.CompileEnglish = OOO, True
        self.calc.OpCodeMap = mapper.getAvailableMappings(API, OPCODES)
        self.excel = self.doc.createInstance("com.sun.star.sheet.FormulaParser")
        self.excel.FormulaConvention, self.excel.CompileEnglish = XL_OOX, True
        # An add-in function (ERF, GESTEP, …) is mapped twice, by Excel's name and by its
        # programmatic name in capitals, and the printer picks the latter: keep Excel's.
        entries = mapper.getAvailableMappings(OOXML, OPCODES)
        addin = mapper.OpCodeExternal

        def programmatic(e):
            return e.Token.OpCode == addin and e.Name == str(e.Token.Data).upper()

        named = {e.Token.Data for e in entries if e.Token.OpCode == addin and not programmatic(e)}
        self.excel.OpCodeMap = tuple(
            e for e in entries if not (programmatic(e) and e.Token.Data in named)
        )

    # -- formulas ------------------------------------------------------------------------
    def to_excel(self, text, sheet, row, col):
        """One formula or name definition in Calc's API grammar → Excel's, without "="."""
        a = CellAddress()
        a.Sheet, a.Column, a.Row = sheet, col, row
        return self.excel.printFormula(self.calc.parseFormula(text, a), a)

    def excel_formulas(self, texts, sheet, r0, c0):
        """A 2-D block of getFormulaArray texts with each formula in Excel's grammar. A column
        filled down holds a few shapes (its formulas with every digit zeroed): where converting
        the first and the last formula of a shape kept each digit run in place, the others are
        the first one's conversion with their own digit runs put in (about 0.25 ms a formula
        saved: a call to LibreOffice each way)."""
        out = [list(row) for row in texts]
        shapes = {}  # (column, shape) -> the cells of that shape, top to bottom
        for r, row in enumerate(texts):
            for c, t in enumerate(row):
                if t.startswith("=") or t.startswith("{="):
                    shapes.setdefault((c, re.sub(r"\d", "0", t)), []).append(r)

        def exact(r, c):
            t = texts[r][c]
            body = t[2:-1] if t.startswith("{") else t[1:]
            return "=" + self.to_excel(body, sheet, r0 + r, c0 + c)

        for (c, _), rows in shapes.items():
            first = exact(rows[0], c)
            out[rows[0]][c] = first
            if len(rows) == 1:
                continue
            last = exact(rows[-1], c)
            out[rows[-1]][c] = last
            template = DIGITS.split(first)
            same = DIGITS.findall(texts[rows[0]][c]) == DIGITS.findall(first)
            if same and _put_digits(template, texts[rows[-1]][c]) == last:
                for r in rows[1:-1]:
                    out[r][c] = _put_digits(template, texts[r][c])
            else:
                for r in rows[1:-1]:
                    out[r][c] = exact(r, c)
        return out

    def alive(self):
        """Is the document still open? (A closed one answers None to most questions.)"""
        try:
            return self.doc.Sheets is not None
        except Exception:
            return False

    # -- requests ------------------------------------------------------------------------
    def sheet(self, name):
        try:
            return self.doc.Sheets.getByName(name)
        except Exception:
            raise KeyError(f"no sheet named {name!r}") from None

    def area(self, name, area):
        r0, c0, r1, c1 = area
        return self.sheet(name).getCellRangeByPosition(c0, r0, c1, r1)

    def op_info(self):
        return {
            "name": self.doc.Title,
            "path": uno.fileUrlToSystemPath(self.doc.URL) if self.doc.URL else self.doc.Title,
            "pid": self.process.pid if self.process else 0,
            "visible": not self.hidden,
        }

    def op_sheets(self):
        return list(self.doc.Sheets.ElementNames)

    def op_active(self):
        return self.doc.CurrentController.ActiveSheet.Name

    def op_activate(self, sheet):
        self.doc.CurrentController.setActiveSheet(self.sheet(sheet))

    def op_add_sheet(self, name, index):
        self.doc.Sheets.insertNewByName(name, index)

    def op_names(self):
        """Every defined name as Excel lists them: a sheet's own are 'Sheet!name'."""
        out = []
        scopes = [(None, -1, self.doc.NamedRanges)]
        for i, s in enumerate(self.doc.Sheets.ElementNames):
            scopes.append((s, i, self.sheet(s).NamedRanges))
        for scope, index, names in scopes:
            for n in names.ElementNames:
                text = self.to_excel(names.getByName(n).Content, max(index, 0), 0, 0)
                label = n if scope is None else f"{_quote(scope)}!{n}"
                out.append({"name": label, "sheet": scope, "refers_to": "=" + text})
        return out

    def op_used(self, sheet):
        """The used area of a sheet (A1 alone when it is empty)."""
        cursor = self.sheet(sheet).createCursor()
        cursor.gotoStartOfUsedArea(False)
        cursor.gotoEndOfUsedArea(True)
        a = cursor.RangeAddress
        return [a.StartRow, a.StartColumn, a.EndRow, a.EndColumn]

    def op_values(self, sheet, area):
        """Numbers, text, None for empty cells; errors as their text ("#DIV/0!")."""
        rng = self.area(sheet, area)
        out = [[None if v == "" else v for v in row] for row in rng.getDataArray()]
        r0, c0 = area[0], area[1]
        for a in rng.queryFormulaCells(ERROR_RESULT).RangeAddresses:
            for r in range(a.StartRow, a.EndRow + 1):
                for c in range(a.StartColumn, a.EndColumn + 1):
                    cell = self.sheet(sheet).getCellByPosition(c, r)
                    out[r - r0][c - c0] = {"error": cell.getString()}
        return out

    def op_formulas(self, sheet, area):
        index = list(self.doc.Sheets.ElementNames).index(sheet)
        texts = self.area(sheet, area).getFormulaArray()
        return self.excel_formulas(texts, index, area[0], area[1])

    def op_has_array(self, sheet, area):
        """True if every cell is part of an array formula, False if none is, None if mixed."""
        texts = self.area(sheet, area).getFormulaArray()
        flags = {t.startswith("{=") for row in texts for t in row}
        return flags.pop() if len(flags) == 1 else None

    def op_write(self, sheet, area, values):
        """All the cells of the area in one call: never some written and some not."""
        rows = tuple(tuple("" if v is None else v for v in row) for row in values)
        self.area(sheet, area).setDataArray(rows)

    def op_status(self, text):
        """The status bar's text (None gives it back to LibreOffice)."""
        if self.hidden:
            return
        if text is None:
            if self.status is not None:
                self.status.end()
                self.status = None
            return
        if self.status is None:
            self.status = self.doc.CurrentController.Frame.createStatusIndicator()
            self.status.start(text, 100)
        self.status.setText(text)

    def op_alert(self, text, title):
        """A message box where there is a window; headless, the caller shows the text."""
        if self.hidden:
            return False
        frame = self.doc.CurrentController.Frame
        toolkit = self.ctx.ServiceManager.createInstanceWithContext(
            "com.sun.star.awt.Toolkit", self.ctx
        )
        from com.sun.star.awt.MessageBoxType import INFOBOX

        box = toolkit.createMessageBox(frame.ContainerWindow, INFOBOX, 1, title, text)
        box.execute()
        return True

    def op_calculate_all(self):
        self.doc.calculateAll()

    def op_close(self):
        """Close the document without saving, and the LibreOffice started here if it is
        headless (nobody could see it); one with a window stays with the user."""
        try:
            self.doc.close(True)
        finally:
            self.stop()

    def stop(self):
        """Close the document and stop the LibreOffice started here (a headless one, or one
        that never showed the document), and remove its profile and the document's lock
        file; one with a window stays with the user. Safe to call twice."""
        if self.process is not None and (self.hidden or getattr(self, "doc", None) is None):
            for part in ("doc", "desktop"):  # closing the document removes its lock file
                try:
                    if part == "doc" and self.doc is not None:
                        self.doc.close(True)
                    elif part == "desktop":
                        self.desktop.terminate()
                except Exception:
                    pass
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # soffice and its children: their own group
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait(timeout=20)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            # a LibreOffice stopped before it closed the document leaves the lock file
            if self.profile and self.process.poll() is not None:
                folder, name = os.path.split(self.path)
                try:
                    os.unlink(os.path.join(folder, f".~lock.{name}#"))
                except OSError:
                    pass
            self.process = None
        if self.profile:
            shutil.rmtree(self.profile, ignore_errors=True)
            self.profile = None


def _put_digits(template, text):
    """`template` (a formula split at its digit runs) with `text`'s digit runs put in."""
    digits = DIGITS.findall(text)
    if len(digits) != len(template) - 1:
        return None
    out = [template[0]]
    for d, rest in zip(digits, template[1:], strict=True):
        out += [d, rest]
    return "".join(out)


def _quote(sheet):
    if re.fullmatch(r"[A-Za-z_][\w.]*", sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"


def _gone(e):
    """Did this exception come from LibreOffice (or the document) going away?"""
    if isinstance(e, DisposedException):
        return True
    text = f"{type(e).__name__} {e}".lower()
    return any(w in text for w in ("disposed", "bridge", "connection", "broken pipe"))


def _plain(v):
    """A reply value as JSON: UNO numbers are Python floats, tuples become lists."""
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _exit(signum, frame):
    raise SystemExit(128 + signum)


def serve(stdin, stdout):
    """Answer requests until `quit` or the end of stdin (excelnet gone, even killed). However
    it ends (SIGTERM and SIGHUP too) the LibreOffice started here stops, and its profile and
    the document's lock file go. Ctrl-C is excelnet's to handle: it says quit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit)
    office = None
    try:
        for line in stdin:
            request = json.loads(line)
            op = request.pop("op")
            try:
                if op == "open":
                    office = Office(**request)
                    result = office.op_info()
                elif op == "quit":
                    if office is not None:
                        office.stop()
                    stdout.write(json.dumps({"ok": None}) + "\n")
                    stdout.flush()
                    return
                else:
                    result = getattr(office, "op_" + op)(**request)
                reply = {"ok": _plain(result)}
            except Exception as e:
                gone = op != "open" and (_gone(e) or (office is not None and not office.alive()))
                reply = {"error": str(e) or type(e).__name__, "gone": gone}
            stdout.write(json.dumps(reply) + "\n")
            stdout.flush()
    except (BrokenPipeError, SystemExit):
        pass  # excelnet went away, or this helper was told to stop: clean up, quietly
    finally:
        if office is not None:
            office.stop()


if __name__ == "__main__":
    serve(sys.stdin, sys.stdout)
