package web

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/popbridge/popbridge/vault"
)

// view is what every page template gets.
type view struct {
	Base      string
	Title     string
	User      string
	Admin     bool
	CSRF      string
	Flash     string
	Error     string
	Now       time.Time
	SignInURL string

	// user page
	Devices     []vault.Device
	Grant       *vault.User
	Enrol       bool
	NewDevice   string
	NewPassword string
	MaxDevices  int

	// admin view
	Users      []vault.User
	AllDevices []vault.Device
}

func (h *Handler) newView(r *http.Request, ss session, title string) *view {
	v := &view{Base: h.base, Title: title, Now: h.now(), Enrol: h.enrol, MaxDevices: vault.MaxDevicesPerUser}
	if ss.id != "" {
		v.User, v.Admin, v.CSRF = ss.user, ss.admin, ss.csrf
		v.Flash = h.sessions.takeFlash(ss.id)
	}
	return v
}

func (h *Handler) render(w http.ResponseWriter, status int, page string, v *view) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := h.pages[page].ExecuteTemplate(w, "layout", v); err != nil {
		h.log.Error("web: rendering failed", "page", page, "err", err)
	}
}

func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	ss, _ := h.session(r)
	v := h.newView(r, ss, http.StatusText(status))
	v.Error = msg
	h.render(w, status, "error", v)
}

// home is the user's page, or the sign-in page without a session.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(r)
	if !ok {
		v := h.newView(r, session{}, "Sign in")
		v.SignInURL = h.base + "/login"
		h.render(w, http.StatusOK, "signin", v)
		return
	}
	h.userPage(w, r, ss, http.StatusOK, "", "")
}

// userPage shows ss's own devices; newDevice and password, if set, are
// shown once.
func (h *Handler) userPage(w http.ResponseWriter, r *http.Request, ss session, status int, newDevice, password string) {
	v := h.newView(r, ss, "Your devices")
	ds, err := h.store.ListDevices(r.Context(), ss.user)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	v.Devices = ds
	if u, err := h.store.GetUser(r.Context(), ss.user); err == nil {
		v.Grant = &u
	} else if !errors.Is(err, vault.ErrNoUser) {
		h.storeError(w, r, err)
		return
	}
	v.NewDevice, v.NewPassword = newDevice, password
	h.render(w, status, "user", v)
}

func (h *Handler) storeError(w http.ResponseWriter, r *http.Request, err error) {
	h.log.Error("web: store failed", "err", err)
	h.errorPage(w, r, http.StatusInternalServerError, "The gateway's store cannot be reached. Try again later.")
}

// createDevice adds a device of the signed-in user and shows its
// password in this response only (it is not stored and never redirected
// through a URL).
func (h *Handler) createDevice(w http.ResponseWriter, r *http.Request, ss session) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	var nets []string
	for _, f := range strings.FieldsFunc(r.PostFormValue("allow"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		nets = append(nets, f)
	}
	allowed, err := vault.ParseNets(nets)
	if err == nil && (name == "" || len(name) > 64) {
		err = errors.New("a device name of 1 to 64 characters is required")
	}
	var d vault.Device
	var pw string
	if err == nil {
		d, pw, err = h.store.AddDevice(r.Context(), ss.user, name, allowed)
	}
	if err != nil {
		h.obs.WebDeviceOp("create", "failed")
		h.sessions.setFlash(ss.id, "The device was not added: "+strings.TrimPrefix(err.Error(), "vault: ")+".")
		h.redirectLocal(w, r, "/")
		return
	}
	h.obs.WebDeviceOp("create", "ok")
	h.log.Info("web: device added", "user", ss.user, "device", d.Name)
	h.userPage(w, r, ss, http.StatusOK, d.Name, pw)
}

// revokeDevice revokes one of the signed-in user's devices, by id. The
// id is looked up among that user's devices only, so another user's
// device id is just unknown here.
func (h *Handler) revokeDevice(w http.ResponseWriter, r *http.Request, ss session) {
	h.revoke(w, r, ss, ss.user, "revoke", "/")
}

func (h *Handler) revoke(w http.ResponseWriter, r *http.Request, ss session, user, op, back string) {
	id, err := strconv.ParseInt(r.PostFormValue("id"), 10, 64)
	if err != nil {
		h.obs.WebDeviceOp(op, "failed")
		h.errorPage(w, r, http.StatusBadRequest, "No device was named.")
		return
	}
	ds, err := h.store.ListDevices(r.Context(), user)
	if err != nil {
		h.storeError(w, r, err)
		return
	}
	var d *vault.Device
	for i := range ds {
		if ds[i].ID == id {
			d = &ds[i]
		}
	}
	if d == nil {
		h.obs.WebDeviceOp(op, "forbidden")
		h.log.Warn("web: revoke of a device not among the user's", "user", ss.user, "target_user", user, "id", id)
		h.errorPage(w, r, http.StatusNotFound, "There is no such device.")
		return
	}
	if err := h.store.RevokeDevice(r.Context(), d.User, d.Name); err != nil && !errors.Is(err, vault.ErrNoDevice) {
		h.obs.WebDeviceOp(op, "failed")
		h.storeError(w, r, err)
		return
	}
	h.obs.WebDeviceOp(op, "ok")
	h.log.Info("web: device revoked", "by", ss.user, "user", d.User, "device", d.Name)
	if user == ss.user {
		h.sessions.setFlash(ss.id, "Revoked "+d.Name+". Its password no longer works.")
	} else {
		h.sessions.setFlash(ss.id, "Revoked "+d.Name+" of "+d.User+".")
	}
	h.redirectLocal(w, r, back)
}

// adminPage lists every user with the health of their grant and every
// device.
func (h *Handler) adminPage(w http.ResponseWriter, r *http.Request) {
	ss, ok := h.session(r)
	if !ok {
		http.Redirect(w, r, h.base+"/login?next="+url.QueryEscape("/admin"), http.StatusSeeOther)
		return
	}
	if !ss.admin {
		h.errorPage(w, r, http.StatusForbidden, "This page is for admins.")
		return
	}
	v := h.newView(r, ss, "All users")
	var err error
	if v.Users, err = h.store.ListUsers(r.Context()); err != nil {
		h.storeError(w, r, err)
		return
	}
	if v.AllDevices, err = h.store.ListDevices(r.Context(), ""); err != nil {
		h.storeError(w, r, err)
		return
	}
	h.render(w, http.StatusOK, "admin", v)
}

func (h *Handler) adminRevoke(w http.ResponseWriter, r *http.Request, ss session) {
	if !ss.admin {
		h.obs.WebDeviceOp("admin_revoke", "forbidden")
		h.errorPage(w, r, http.StatusForbidden, "This is for admins.")
		return
	}
	user := r.PostFormValue("user")
	if user == "" {
		h.obs.WebDeviceOp("admin_revoke", "failed")
		h.errorPage(w, r, http.StatusBadRequest, "No user was named.")
		return
	}
	h.revoke(w, r, ss, user, "admin_revoke", "/admin")
}

func (h *Handler) adminRemove(w http.ResponseWriter, r *http.Request, ss session) {
	if !ss.admin {
		h.obs.WebDeviceOp("admin_remove_user", "forbidden")
		h.errorPage(w, r, http.StatusForbidden, "This is for admins.")
		return
	}
	user := r.PostFormValue("user")
	if err := h.store.RemoveUser(r.Context(), user); err != nil {
		h.obs.WebDeviceOp("admin_remove_user", "failed")
		if errors.Is(err, vault.ErrNoUser) {
			h.errorPage(w, r, http.StatusNotFound, "There is no such user.")
			return
		}
		h.storeError(w, r, err)
		return
	}
	h.sessions.deleteUser(user)
	h.obs.WebDeviceOp("admin_remove_user", "ok")
	h.log.Info("web: user removed", "by", ss.user, "user", user)
	h.sessions.setFlash(ss.id, "Removed "+user+" with all devices and the mailbox grant.")
	h.redirectLocal(w, r, "/admin")
}

// Template helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"ago": func(now, t time.Time) string {
		if t.IsZero() {
			return ""
		}
		d := now.Sub(t)
		switch {
		case d < time.Minute:
			return "just now"
		case d < time.Hour:
			return strconv.Itoa(int(d/time.Minute)) + " min ago"
		case d < 48*time.Hour:
			return strconv.Itoa(int(d/time.Hour)) + " h ago"
		}
		return strconv.Itoa(int(d/(24*time.Hour))) + " days ago"
	},
	"deref":   func(u *vault.User) vault.User { return *u },
	"healthy": func(u vault.User) bool { return u.HasGrant && !u.NeedsReenrollment && u.LastError == "" },
	"addr": func(d vault.Device) string {
		if d.LastAddr.IsValid() {
			return d.LastAddr.Unmap().String()
		}
		return "—"
	},
	"allowed": func(d vault.Device) string {
		if len(d.AllowedNets) == 0 {
			return "any"
		}
		s := make([]string, len(d.AllowedNets))
		for i, p := range d.AllowedNets {
			s[i] = p.String()
		}
		return strings.Join(s, ", ")
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, p := range []string{"signin", "user", "admin", "error"} {
		t, err := template.New(p).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+p+".html")
		if err != nil {
			return nil, err
		}
		pages[p] = t
	}
	return pages, nil
}
